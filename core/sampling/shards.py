"""Splitting work by process: ``--shard I/N`` and torchrun's ranks. Standard library only, so
that the torch-free ONNX sampler shards too.

A sample order is a list of network calls fixed by (order, start index, batch size); a shard
makes a contiguous block of those calls, exactly as the unsharded run would make them, so the
shards' samples together are the unsharded samples bit for bit, and their file names (from the
sample index) never collide.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from synthscape.core.errors import SynthscapeError

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` (0-based): a contiguous block of an ordered list of work items."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise SynthscapeError(f"shard must be I/N with 0 <= I < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` as given to ``--shard``; anything else is a one-line error."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not match:
            raise SynthscapeError(f"--shard must look like I/N (for example 0/4), got {text!r}")
        return cls(int(match[1]), int(match[2]))

    def block(self, items: int) -> range:
        """This shard's positions among ``items``: the blocks of all shards tile ``range(items)``."""
        return range(self.index * items // self.count, (self.index + 1) * items // self.count)

    @property
    def name(self) -> str:
        """A folder name for this shard's output that sorts in shard order: ``shard-001-of-004``."""
        return f"shard-{self.index:03d}-of-{self.count:03d}"


def torchrun_environment() -> dict[str, int] | None:
    """``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` when launched by torchrun, else None."""
    present = [name for name in TORCHRUN_VARIABLES if name in os.environ]
    if not present:
        return None
    if len(present) != len(TORCHRUN_VARIABLES):
        missing = sorted(set(TORCHRUN_VARIABLES) - set(present))
        raise SynthscapeError(f"{', '.join(present)} set but {', '.join(missing)} not: launch with torchrun, or unset them")
    try:
        values = {name: int(os.environ[name]) for name in TORCHRUN_VARIABLES}
    except ValueError:
        raise SynthscapeError(f"torchrun variables must be integers, got "
                              f"{', '.join(f'{n}={os.environ[n]}' for n in TORCHRUN_VARIABLES)}") from None
    if not 0 <= values["RANK"] < values["WORLD_SIZE"]:
        raise SynthscapeError(f"RANK={values['RANK']} is not within WORLD_SIZE={values['WORLD_SIZE']}")
    return values


def torchrun_shard() -> Shard | None:
    """This process's shard of a sample order under torchrun (rank of world size), else None."""
    env = torchrun_environment()
    return None if env is None else Shard(env["RANK"], env["WORLD_SIZE"])
