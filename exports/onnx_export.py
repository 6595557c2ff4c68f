"""Export a run's generator to ONNX and check it before calling it done.

The exported graph is the generator alone (the EMA generator of a GAN, the decoder of a VAE):
inputs ``z`` float32 [B, Z] and ``condition`` int64 [B, A], output ``image`` float32 in [-1, 1],
batch dynamic; in 3D its up-blocks are rewritten to run at low resolution (``subpixel.py``).
``config.json`` travels in the metadata (see ``runtime.py``). An export that fails
``onnx.checker`` or parity with the trained network on onnxruntime is a failed export, with the
numbers; fp16 and int8 (``precision.py``) are checked against fp32.
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


def export_onnx(run: str | Path, out: str | Path, opset: int = 17, precision: str = "fp32",
                fold: bool | None = None) -> dict[str, object]:
    """Write ``out`` at ``precision`` once its fp32 graph passes the checker and parity with torch;
    return ``{"parity": {batch: max |onnx - torch|}, "precision_error": {"max", "mean"} vs fp32}``.
    ``fold``: run the up-blocks at low resolution (default: where it is faster, ``FOLDED_DIMS``)."""
    sampler = load_run(run)
    network = sampler.network.eval()
    if fold is None:
        fold = sampler.config.network.spatial_dims in FOLDED_DIMS
    graph = fold_upsampling(network) if fold else network  # the same function either way
    example = example_inputs(sampler, 2)
    buffer = io.BytesIO()
    # The TorchScript exporter: the torch.export one needs onnxscript, which the edge install lacks.
    # Its warnings (deprecation; GroupNorm's batch-size check traced as a constant) are answered by
    # the parity check at batch sizes 1, 2 and 7 below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, torch.jit.TracerWarning))
        torch.onnx.export(graph, tuple(torch.from_numpy(a) for a in example), buffer, input_names=["z", "condition"],
                          output_names=["image"], opset_version=opset, dynamo=False,
                          dynamic_axes={"z": {0: "batch"}, "condition": {0: "batch"}, "image": {0: "batch"}})
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
    model, precision_error = lower(model, precision, sampler)
    model.metadata_props.add(key="precision", value=precision)
    write_bytes(out, model.SerializeToString())
    return {"parity": {b: e for b, (e, _) in errors.items()}, "precision_error": precision_error}


def example_inputs(sampler, batch: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Latents and conditions of samples 0..batch-1 of ``seed``, as sampling would draw them."""
    from synthscape.core.sampling.sampler import plan

    latents, encoded, _ = plan(sampler.schema, sampler.prior, sampler.latent_dim, batch, seed=seed)
    return latents, encoded


def parity(model: bytes, network: torch.nn.Module, sampler) -> dict[int, tuple[float, bool]]:
    """Per batch size in ``PARITY_BATCHES``: max |onnxruntime - torch| on the same sampling inputs,
    and whether it is within ``TOLERANCE``. Several sizes, since the batch axis is dynamic and a
    traced constant would break only the sizes it was not traced at."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    results = {}
    for batch in PARITY_BATCHES:
        z, c = example_inputs(sampler, batch, seed=batch)
        with torch.no_grad():
            expected = network(torch.from_numpy(z), torch.from_numpy(c)).numpy()
        got = session.run(["image"], {"z": z, "condition": c})[0]
        results[batch] = (float(np.abs(got - expected).max()), bool(np.allclose(got, expected, **TOLERANCE)))
    return results
