"""synthscape: labelled synthetic data for lung CT and driving/drone scenes.

    import synthscape
    generator = synthscape.load("runs/ct-gan")
    samples = generator.sample(8, condition={"nodule": "present"}, seed=0)
    samples.images, samples.conditions

    dataset = synthscape.SyntheticDataset("runs/ct-gan", {"nodule": "present"}, length=1000)  # a torch Dataset

``import synthscape`` does not import torch; ``load`` of a run directory does, of an ``.onnx`` file not,
and ``SyntheticDataset`` is imported (with torch) on first use of the name.
"""

from __future__ import annotations

from pathlib import Path

from synthscape.core.errors import SynthscapeError
from synthscape.core.sampling.sampler import Sampler, Samples
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema

__version__ = "0.1.0"
__all__ = ["ConditionPrior", "ConditionSchema", "Sampler", "Samples", "SyntheticDataset", "SynthscapeError", "load",
           "__version__"]


def load(path: str | Path, device: str = "cpu") -> Sampler:
    """Load a trained generator for ``.sample(count, condition=..., seed=...)``: a run directory
    (torch) or an exported ``.onnx`` file (onnxruntime, no torch; ``device`` picks its execution provider)."""
    path = Path(path)
    if path.suffix == ".onnx":
        from synthscape.exports.runtime import OnnxSampler

        return OnnxSampler(path, device=device)
    if not path.exists():
        raise SynthscapeError(f"{path} does not exist: expected a run directory with config.json and generator.safetensors")
    from synthscape.core.networks.artifacts import load_run

    return load_run(path, device=device)


def __getattr__(name: str):
    """Names whose modules need torch, imported on first use so that ``import synthscape`` stays torch-free."""
    if name == "SyntheticDataset":
        from synthscape.synthetic_dataset import SyntheticDataset

        return SyntheticDataset
    raise AttributeError(f"module 'synthscape' has no attribute {name!r}")
