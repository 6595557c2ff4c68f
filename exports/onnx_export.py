"""Export a run's generator to ONNX and check it before calling it done.

The exported graph is the generator alone (the EMA generator of a GAN, the decoder of a VAE):
inputs ``z`` float32 [B, Z] and ``condition`` int64 [B, A], output ``image`` float32 in [-1, 1],
batch dynamic; in 3D its up-blocks are rewritten to run at low resolution (``subpixel.py``).
A layout model's graph (``LayoutGenerator``) also takes ``layout`` int64 [B, *S] and ``noise``
float32 [B, 1, *S], with the batch and every spatial axis dynamic: one file renders any size its
stride divides. ``config.json`` travels in the metadata (see ``runtime.py``). An export that fails
``onnx.checker`` or parity with the trained network on onnxruntime is a failed export, with the
numbers; fp16 and int8 (``precision.py``) are checked against fp32 (class-only models only).
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch

from synthscape import __version__
from synthscape.core.errors import SynthscapeError
from synthscape.core.files.atomic import write_bytes
from synthscape.core.networks.artifacts import load_run
from synthscape.core.sampling.sampler import noise_map, plan
from synthscape.exports.precision import lower
from synthscape.exports.runtime import METADATA_KEY
from synthscape.exports.subpixel import fold_upsampling

log = logging.getLogger("synthscape")
PARITY_BATCHES = (1, 2, 7)
TOLERANCE = {"rtol": 1e-3, "atol": 1e-4}  # fp32, against torch eager on the same inputs
# Where the sub-pixel rewrite (subpixel.py) wins on onnxruntime's CPU provider, measured by
# benchmarks/onnx_sampling.py: 3D (its Resize dominates the graph), not 2D (its Resize is cheap
# and the rewrite adds two transposes).
FOLDED_DIMS = (3,)
# The dynamic spatial axes of a layout model's graph, by position: layout [batch, size_0, ...],
# noise and image [batch, 1 or C, size_0, ...].
SPATIAL_AXES = ("size_0", "size_1", "size_2")


def export_onnx(run: str | Path, out: str | Path, opset: int = 17, precision: str = "fp32",
                fold: bool | None = None) -> dict[str, object]:
    """Write ``out`` at ``precision`` once its fp32 graph passes the checker and parity with torch;
    return ``{"parity": {batch: max |onnx - torch|}, "precision_error": {"max", "mean"} vs fp32}``
    (a layout model's parity keys say the size too: ``"2 at 32x16x16"``, see ``parity_cases``).
    ``fold``: run the up-blocks at low resolution (default: where it is faster, ``FOLDED_DIMS``;
    class-only generators only). A layout model's fp16 and int8 graphs are checked, and int8
    calibrated, on ``example_layout`` maps at the training size with sampling's noise maps."""
    sampler = load_run(run)
    network = sampler.network.eval()
    layout = sampler.label_map is not None
    if layout:
        # fold_upsampling rewrites ConditionalGenerator's UpBlock; a LayoutGenerator's LayoutUpBlock
        # (SPADE norms read the label map at the high resolution, noise injected after the upsample)
        # does not commute with it, so its graph keeps Resize.
        if fold:
            raise SynthscapeError("fold (the sub-pixel rewrite) is for class-only generators; a layout model "
                                  "exports as it is")
        fold = False
    elif fold is None:
        fold = sampler.config.network.spatial_dims in FOLDED_DIMS
    graph = fold_upsampling(network) if fold else network  # the same function either way
    example = example_inputs(sampler, 2)
    names, axes = ["z", "condition"], {"z": {0: "batch"}, "condition": {0: "batch"}, "image": {0: "batch"}}
    if layout:
        spatial = SPATIAL_AXES[: sampler.config.network.spatial_dims]
        names += ["layout", "noise"]
        axes["layout"] = {0: "batch", **{1 + i: name for i, name in enumerate(spatial)}}
        for key in ("noise", "image"):
            axes[key] = {0: "batch", **{2 + i: name for i, name in enumerate(spatial)}}
    buffer = io.BytesIO()
    # The TorchScript exporter: the torch.export one needs onnxscript, which the edge install lacks.
    # Its warnings (deprecation; GroupNorm's batch-size check traced as a constant) are answered by
    # the parity check at batch sizes 1, 2 and 7 (and, for layout models, at a second size) below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, torch.jit.TracerWarning))
        torch.onnx.export(graph, tuple(torch.from_numpy(a) for a in example), buffer, input_names=names,
                          output_names=["image"], opset_version=opset, dynamo=False, dynamic_axes=axes)
    model = onnx.load_from_string(buffer.getvalue())
    meta = {**sampler.config.to_dict(), "synthscape_version": __version__}
    onnx.helper.set_model_props(model, {METADATA_KEY: json.dumps(meta), "version": __version__,
                                        "domain": sampler.domain})
    model.doc_string = f"synthscape {sampler.domain} {sampler.config.model} generator, step {sampler.config.step}"
    onnx.checker.check_model(model, full_check=True)
    errors = parity(model.SerializeToString(), network, sampler)
    if any(not ok for ok in errors.values()):
        raise SynthscapeError(f"ONNX export of {run} fails parity with torch (rtol 1e-3, atol 1e-4): " +
                              ", ".join(f"batch {b}: max |diff| {e:.2e}" for b, (e, _) in errors.items()))
    model, precision_error = lower(model, precision, lambda count, seed: dict(zip(names, example_inputs(sampler, count, seed))))
    model.metadata_props.add(key="precision", value=precision)
    write_bytes(out, model.SerializeToString())
    return {"parity": {b: e for b, (e, _) in errors.items()}, "precision_error": precision_error}


def example_inputs(sampler, batch: int, seed: int = 0, size: tuple[int, ...] | None = None) -> tuple[np.ndarray, ...]:
    """Latents and conditions of samples 0..batch-1 of ``seed``, as sampling would draw them; for a
    layout model also their label maps (``example_layout``) and noise maps (``noise_map``, as
    sampling draws them) at ``size``, by default the training image size."""
    latents, encoded, _ = plan(sampler.schema, sampler.prior, sampler.latent_dim, batch, seed=seed)
    if sampler.label_map is None:
        return latents, encoded
    size = tuple(size or sampler.config.network.image_size)
    layouts = np.stack([example_layout(len(sampler.label_map), size, seed, i) for i in range(batch)])
    noise = np.stack([noise_map(seed, i, size) for i in range(batch)])
    return latents, encoded, layouts, noise


def example_layout(classes: int, size: tuple[int, ...], seed: int, index: int) -> np.ndarray:
    """A label map int64 ``size`` holding every class in irregular blobs: the argmax over ``classes``
    random fields box-blurred (periodically) to about an eighth of the smallest side, then a 2-voxel
    cube for any class the draw missed. Deterministic in (seed, index); numpy only. Not anatomy,
    but boundaries at every offset of every pooling stage, as a real map has."""
    rng = np.random.default_rng([int(seed), int(index), 3])
    fields = rng.standard_normal((classes, *size), dtype=np.float32)
    radius = max(1, min(size) // 16)
    for axis in range(1, fields.ndim):
        fields = sum(np.roll(fields, shift, axis) for shift in range(-radius, radius + 1))
    labels = fields.argmax(0).astype(np.int64)
    for k in range(classes):
        if not (labels == k).any():
            corner = [int(rng.integers(0, s - 1)) for s in size]
            labels[tuple(slice(c, c + 2) for c in corner)] = k
    return labels


def parity_cases(sampler) -> list[tuple[int | str, int, tuple[int, ...] | None]]:
    """(key, batch, size) of each parity check: ``PARITY_BATCHES`` at the training size; a layout
    model also batch 2 at twice the training size along the first axis (its spatial axes are
    dynamic, and a size traced as a constant would break only the sizes it was not traced at)."""
    if sampler.label_map is None:
        return [(batch, batch, None) for batch in PARITY_BATCHES]
    base = tuple(sampler.config.network.image_size)
    other = (2 * base[0], *base[1:])
    return ([(f"{batch} at {'x'.join(map(str, base))}", batch, base) for batch in PARITY_BATCHES] +
            [(f"2 at {'x'.join(map(str, other))}", 2, other)])


def parity(model: bytes, network: torch.nn.Module, sampler) -> dict[int | str, tuple[float, bool]]:
    """Per case of ``parity_cases`` (batch sizes ``PARITY_BATCHES``, and for a layout model a second
    spatial size): max |onnxruntime - torch| on the same sampling inputs, and whether it is within
    ``TOLERANCE``. Several sizes, since the batch axis is dynamic and a traced constant would break
    only the sizes it was not traced at."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    names = ["z", "condition", "layout", "noise"]
    results = {}
    for key, batch, size in parity_cases(sampler):
        inputs = example_inputs(sampler, batch, seed=batch, size=size)
        with torch.no_grad():
            expected = network(*(torch.from_numpy(a) for a in inputs)).numpy()
        got = session.run(["image"], dict(zip(names, inputs)))[0]
        results[key] = (float(np.abs(got - expected).max()), bool(np.allclose(got, expected, **TOLERANCE)))
    return results
