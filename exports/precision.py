"""Lower-precision ONNX generators: fp16 weights and activations, int8 static quantization.

Both keep float32 ``z`` and ``image`` (and int64 ``condition``; a layout model's int64 ``layout``
and float32 ``noise``), so a caller never changes. Each is checked against the fp32 model on the
same inputs; the error is reported and must stay within a bound, else the export fails with the
numbers. The inputs come from ``Feeds``, a function of (count, seed) that the exporter gives:
sampling's latents and conditions, and for a layout model label maps and noise maps beside them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx

from synthscape.core.errors import SynthscapeError

Feeds = Callable[[int, int], dict[str, np.ndarray]]  # (count, seed) -> the graph's inputs by name
PRECISIONS = ("fp32", "fp16", "int8")
# Bounds on |low precision - fp32| over images in [-1, 1]: (max, mean).
BOUNDS = {"fp16": (0.02, 0.002), "int8": (0.5, 0.05)}
# Convolutions with fewer output channels stay float in int8 models: onnxruntime's int8 kernels
# pack output channels, and the image layer (1 or 3 of them) took 81 of the 105 ms of the 64^3
# lung generator quantized (0.9 ms in float); it is also the layer whose rounding shows directly.
INT8_MIN_OUT_CHANNELS = 8


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weights and activations in float16; ``z``, ``condition`` and ``image`` keep their types."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


def to_int8(model: onnx.ModelProto, feeds: Feeds, batches: int = 8, batch_size: int = 8) -> onnx.ModelProto:
    """Static QDQ quantization (per-channel int8 weights, int8 activations) calibrated on
    ``feeds`` (seeds 1000 + i: the latents and conditions sampling draws), so ranges match real use.

    Convolutions only, and not the thin ones (``INT8_MIN_OUT_CHANNELS``): the Gemms (latent
    projection, FiLM) are a sliver of the compute, and quantized they cost more in dequantizing
    than they save (128x128 driving generator, batch 1: 9.4 ms with them, 7.5 ms without)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.feeds = [feeds(batch_size, 1000 + i) for i in range(batches)]

        def get_next(self):
            return self.feeds.pop() if self.feeds else None

    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, str(source))
        quantize_static(str(source), str(target), Calibration(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=thin_convolutions(model))
        return onnx.load(str(target))


def thin_convolutions(model: onnx.ModelProto) -> list[str]:
    """Names of the Conv nodes with fewer than ``INT8_MIN_OUT_CHANNELS`` outputs, which int8 leaves in float."""
    weights = {init.name: init.dims for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "Conv" and weights.get(node.input[1], [INT8_MIN_OUT_CHANNELS])[0] < INT8_MIN_OUT_CHANNELS]


def lower(model: onnx.ModelProto, precision: str, feeds: Feeds) -> tuple[onnx.ModelProto, dict[str, float]]:
    """``model`` at ``precision`` and its error against fp32 ({"max": .., "mean": ..}); fp32 as is."""
    if precision not in PRECISIONS:
        raise SynthscapeError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return model, {"max": 0.0, "mean": 0.0}
    lowered = to_fp16(model) if precision == "fp16" else to_int8(model, feeds)
    error = error_against(lowered, model, feeds)
    bound_max, bound_mean = BOUNDS[precision]
    if error["max"] > bound_max or error["mean"] > bound_mean:
        raise SynthscapeError(f"{precision} export differs from fp32 by max {error['max']:.3g} (bound {bound_max}), "
                              f"mean {error['mean']:.3g} (bound {bound_mean})")
    return lowered, error


def error_against(model: onnx.ModelProto, reference: onnx.ModelProto, feeds: Feeds, count: int = 7) -> dict[str, float]:
    """``{"max", "mean"}`` of |model - reference| over ``count`` images of ``feeds`` (seed 7)."""
    import onnxruntime as ort

    inputs = feeds(count, 7)

    def run(m: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        return session.run(["image"], inputs)[0]

    diff = np.abs(run(model).astype(np.float32) - run(reference))
    return {"max": float(diff.max()), "mean": float(diff.mean())}
