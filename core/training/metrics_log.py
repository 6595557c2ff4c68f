"""metrics.csv, one row per logged step, and TensorBoard events when tensorboard is installed."""

from __future__ import annotations

import csv
import importlib.util
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from synthscape.core.files.atomic import atomic_path

log = logging.getLogger("synthscape")


class MetricsLog:
    """Append-only CSV with a fixed header. On resume, rows after the resumed step are dropped,
    so the file always describes the weights on disk."""

    def __init__(self, run: Path, names: Sequence[str], resume_step: int | None = None):
        self.path = run / "metrics.csv"
        self.columns = ["step", *names]
        if resume_step is not None and self.path.is_file():
            self._truncate_after(resume_step)
        if not self.path.is_file():  # csv's own line ends, as the rows and a resume's rewrite have them
            with atomic_path(self.path) as tmp, tmp.open("w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        self.tensorboard = None
        if importlib.util.find_spec("tensorboard") is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run / "tensorboard"), purge_step=resume_step)

    def _truncate_after(self, step: int) -> None:
        with self.path.open(newline="") as handle:
            rows = list(csv.reader(handle))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as handle:
            csv.writer(handle).writerows(kept)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        """Append the row for ``step`` (and each metric to TensorBoard as ``train/<name>``); a column
        missing from ``metrics``, such as r1 off its schedule, is left blank."""
        values = [metrics.get(name, float("nan")) for name in self.columns[1:]]
        row = [step] + [f"{v:.6g}" if v == v else "" for v in values]  # blank: not measured at this step
        with self.path.open("a", newline="") as handle:
            csv.writer(handle).writerow(row)
        if self.tensorboard is not None:
            for name, value in metrics.items():
                self.tensorboard.add_scalar(f"train/{name}", value, step)

    def close(self) -> None:
        """Close the TensorBoard writer; the CSV needs nothing, each ``write`` opens and closes it."""
        if self.tensorboard is not None:
            self.tensorboard.close()
