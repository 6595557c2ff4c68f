"""synthscape: labelled synthetic data for lung CT and driving/drone scenes.

    import synthscape
    generator = synthscape.load("runs/ct-gan")
    samples = generator.sample(8, condition={"nodule": "present"}, seed=0)
    samples.images, samples.conditions

``import synthscape`` does not import torch; ``load`` of a run directory does, of an ``.onnx`` file not.
"""

from __future__ import annotations

from pathlib import Path

from synthscape.core.conditions import ConditionPrior, ConditionSchema
from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling import Sampler, Samples

__version__ = "0.1.0"
__all__ = ["ConditionPrior", "ConditionSchema", "Sampler", "Samples", "SynthscapeError", "load", "__version__"]


def load(path: str | Path, device: str = "cpu") -> Sampler:
    """Load a trained generator for ``.sample(count, condition=..., seed=...)``: a run directory
    (torch) or an exported ``.onnx`` file (onnxruntime, no torch; ``device`` picks its execution provider)."""
    path = Path(path)
    if path.suffix == ".onnx":
        from synthscape.exports.runtime import OnnxSampler

        return OnnxSampler(path, device=device)
    if not path.exists():
        raise SynthscapeError(f"{path} does not exist: expected a run directory with config.json and generator.safetensors")
    from synthscape.core.artifacts import load_run

    return load_run(path, device=device)
