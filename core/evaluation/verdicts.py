"""A metric beside its real-vs-real reference, and the written rule that judges the two.

The metrics (``suite.py``) make these rows; the report renders them. Kept apart from the
renderer so that the metrics depend on no HTML, and stdlib only, so the rows travel anywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from synthscape.core.errors import SynthscapeError

BETTER = ("higher", "lower", "closer-to-1", "info")
DEFAULT_TOLERANCE = 0.1


@dataclass
class MetricRow:
    """One metric and its real-vs-real reference.

    ``better`` says which way is good: ``higher`` (accuracy, diversity), ``lower`` (distances),
    ``closer-to-1`` (ratios such as TSTR/TRTR or distance-to-closest-record), or ``info`` (shown,
    not judged). The verdict is computed by :func:`judge` unless the caller sets ``verdict``
    (say, for a rule of its own such as "diversity at least half of real": ``higher`` with
    ``tolerance=0.5`` gives that too).
    """

    group: str
    name: str
    value: float | None
    reference: float | None
    better: str
    note: str = ""
    tolerance: float = DEFAULT_TOLERANCE
    verdict: str | None = None

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise SynthscapeError(f"metric {self.name!r}: better must be one of {', '.join(BETTER)}, got {self.better!r}")
        if not self.tolerance >= 0:
            raise SynthscapeError(f"metric {self.name!r}: tolerance must be >= 0, got {self.tolerance!r}")
        self.value = None if self.value is None else float(self.value)
        self.reference = None if self.reference is None else float(self.reference)


def judge(row: MetricRow) -> str:
    """``ok`` or ``check`` from value against reference; ``n/a`` when there is no value and
    ``""`` when there is nothing to judge against. With ``t = row.tolerance``:

    - higher: ok if ``value >= reference - t * |reference|``
    - lower: ok if ``value <= reference + t * |reference|``
    - closer-to-1: ok if ``|value - 1| <= |reference - 1| + t`` (reference missing counts as 1)
    """
    if row.verdict is not None:
        return row.verdict
    if row.value is None or not math.isfinite(row.value):
        return "n/a"
    value, reference, t = row.value, row.reference, row.tolerance
    if row.better == "closer-to-1":
        reference = 1.0 if reference is None else reference
        return "ok" if abs(value - 1) <= abs(reference - 1) + t else "check"
    if row.better == "info" or reference is None or not math.isfinite(reference):
        return ""
    if row.better == "higher":
        return "ok" if value >= reference - t * abs(reference) else "check"
    return "ok" if value <= reference + t * abs(reference) else "check"


def rule_text(row: MetricRow) -> str:
    """The rule behind the row's verdict, in words for the table."""
    if row.verdict is not None:
        return {"info": "", "closer-to-1": "closer to 1"}.get(row.better, row.better)
    return {
        "higher": f"higher; ok if ≥ reference − {row.tolerance:.0%}",
        "lower": f"lower; ok if ≤ reference + {row.tolerance:.0%}",
        "closer-to-1": f"closer to 1; ok if |v−1| ≤ |ref−1| + {row.tolerance:g}",
        "info": "",
    }[row.better]
