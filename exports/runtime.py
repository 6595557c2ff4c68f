"""Sampling an exported ONNX generator with onnxruntime: numpy only, no torch.

The model carries its own ``config.json`` (domain, condition schema and training frequencies,
latent size, output range, domain geometry such as the HU window and spacing) in its metadata
under ``synthscape``, so the ``.onnx`` file alone is enough to make labelled data on a device.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.sampling.sampler import Sampler
from synthscape.core.schema.config import ArtifactConfig

METADATA_KEY = "synthscape"


def execution_providers(device: str) -> list[str]:
    """onnxruntime execution providers for ``device``, best first.

    cpu: the default CPU provider. (OpenVINO's, from onnxruntime-openvino, was faster for the 3D
    lung generator and slower for the 2D driving one here, benchmarks/onnx_providers.py: pass it
    as ``providers`` where it wins.) cuda: the CUDA provider, which must be there
    (onnxruntime-gpu), with the CPU provider behind it for any node it lacks.
    """
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device != "cuda":
        raise SynthscapeError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")
    available = ort.get_available_providers()
    if "CUDAExecutionProvider" not in available:
        raise SynthscapeError(f"device 'cuda' needs onnxruntime's CUDAExecutionProvider (pip install onnxruntime-gpu); "
                              f"this onnxruntime has {', '.join(available)}")
    return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def read_metadata(path: Path, text: str) -> dict:
    """The ``synthscape`` metadata entry: the run's config.json as a JSON object."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: lists nested thousands deep
        raise SynthscapeError(f"{path} has '{METADATA_KEY}' metadata that is not JSON ({shown(str(exc))}); re-export it "
                              "with 'synthscape export'") from None
    if not isinstance(data, dict):
        raise SynthscapeError(f"{path} has '{METADATA_KEY}' metadata that is a JSON {type(data).__name__}, "
                              "expected the run's config.json object")
    return data


class OnnxSampler(Sampler):
    """``.sample(count, condition=..., seed=...)`` on onnxruntime; the same images as the run's
    torch sampler for the same seed (within float tolerance). ``providers`` overrides the choice
    that ``device`` makes (see ``execution_providers``)."""

    def __init__(self, path: str | Path, device: str = "cpu", providers: list | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise SynthscapeError(f"{path} does not exist: expected an ONNX file written by 'synthscape export'")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers or execution_providers(device))
        except Exception as exc:  # noqa: BLE001 -- onnxruntime's errors (InvalidProtobuf ...) subclass Exception only
            raise SynthscapeError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise SynthscapeError(f"{path} has no '{METADATA_KEY}' metadata: it was not written by 'synthscape export'")
        self.config = ArtifactConfig.from_dict(read_metadata(path, metadata[METADATA_KEY]), source=str(path))
        self.schema, self.prior = self.config.schema, self.config.prior
        self.latent_dim = self.config.network.latent_dim
        self.domain, self.domain_meta = self.config.domain, self.config.domain_meta
        self.label_map = self.config.label_map

    def generate(self, latents: np.ndarray, condition: np.ndarray, layout: np.ndarray | None = None,
                 noise: np.ndarray | None = None) -> np.ndarray:
        """float32 ``[B, Z]`` + int64 ``[B, A]`` (+ a layout model's int64 label maps ``[B, *S]`` and
        float32 noise ``[B, 1, *S]``) -> float32 images, in one onnxruntime call."""
        feeds = {"z": np.ascontiguousarray(latents, dtype=np.float32),
                 "condition": np.ascontiguousarray(condition, dtype=np.int64)}
        if self.label_map is not None:
            if layout is None or noise is None:
                raise SynthscapeError("this layout model needs a label map and a noise map beside z and the condition")
            feeds["layout"] = np.ascontiguousarray(layout, dtype=np.int64)
            feeds["noise"] = np.ascontiguousarray(noise, dtype=np.float32)
        (images,) = self.session.run(["image"], feeds)
        return images.astype(np.float32, copy=False)
