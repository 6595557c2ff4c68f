"""Sampling an exported ONNX generator with onnxruntime: numpy only, no torch.

The model carries its own ``config.json`` (domain, condition schema and training frequencies,
latent size, output range, domain geometry such as the HU window and spacing) in its metadata
under ``synthscape``, so the ``.onnx`` file alone is enough to make labelled data on a device.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from synthscape.core.config import ArtifactConfig
from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling import Sampler

METADATA_KEY = "synthscape"


class OnnxSampler(Sampler):
    """``.sample(count, condition=..., seed=...)`` on onnxruntime; the same images as the run's
    torch sampler for the same seed (within float tolerance)."""

    def __init__(self, path: str | Path, providers: list[str] | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise SynthscapeError(f"{path} does not exist: expected an ONNX file written by 'synthscape export'")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise SynthscapeError(f"{path} is not a loadable ONNX model: {str(exc).splitlines()[0]}") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in metadata:
            raise SynthscapeError(f"{path} has no '{METADATA_KEY}' metadata: it was not written by 'synthscape export'")
        self.config = ArtifactConfig.from_dict(json.loads(metadata[METADATA_KEY]), source=str(path))
        self.schema, self.prior = self.config.schema, self.config.prior
        self.latent_dim = self.config.network.latent_dim
        self.domain, self.domain_meta = self.config.domain, self.config.domain_meta

    def generate(self, latents: np.ndarray, condition: np.ndarray) -> np.ndarray:
        (images,) = self.session.run(["image"], {"z": np.ascontiguousarray(latents, dtype=np.float32),
                                                 "condition": np.ascontiguousarray(condition, dtype=np.int64)})
        return images.astype(np.float32, copy=False)
