"""Metric rows and their verdicts: the rule reads value and reference together, within the
row's tolerance, and says in words what it checked."""

import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.evaluation.verdicts import MetricRow, judge, rule_text


@pytest.mark.parametrize("row, expected", [
    (MetricRow("g", "m", 0.81, 0.9, "higher"), "ok"),
    (MetricRow("g", "m", 0.80, 0.9, "higher"), "check"),
    (MetricRow("g", "m", 0.46, 0.9, "higher", tolerance=0.5), "ok"),  # "at least half of real"
    (MetricRow("g", "m", 0.44, 0.9, "higher", tolerance=0.5), "check"),
    (MetricRow("g", "m", 1.09, 1.0, "lower"), "ok"),
    (MetricRow("g", "m", 1.11, 1.0, "lower"), "check"),
    (MetricRow("g", "m", 0.0, 0.0, "lower"), "ok"),
    (MetricRow("g", "m", 0.01, 0.0, "lower"), "check"),
    (MetricRow("g", "m", 0.75, 0.9, "closer-to-1"), "check"),
    (MetricRow("g", "m", 0.85, 0.9, "closer-to-1"), "ok"),
    (MetricRow("g", "m", float("nan"), 0.9, "higher"), "n/a"),
    (MetricRow("g", "m", 0.5, None, "higher"), ""),
    (MetricRow("g", "m", 0.5, 0.1, "info"), ""),
])
def test_verdict_rule(row, expected):
    assert judge(row) == expected


@pytest.mark.parametrize("row, text", [
    (MetricRow("g", "m", 1.0, 1.0, "higher", tolerance=0.5), "higher; ok if ≥ reference − 50%"),
    (MetricRow("g", "m", 1.0, 1.0, "lower"), "lower; ok if ≤ reference + 10%"),
    (MetricRow("g", "m", 1.0, 1.0, "closer-to-1", tolerance=0.2), "closer to 1; ok if |v−1| ≤ |ref−1| + 0.2"),
    (MetricRow("g", "m", 1.0, 1.0, "info"), ""),
    (MetricRow("g", "m", 1.0, 1.0, "closer-to-1", verdict="caller says"), "closer to 1"),  # the caller's rule, unstated
])
def test_rule_text_states_the_rule(row, text):
    assert rule_text(row) == text


@pytest.mark.parametrize("make, message", [
    (lambda: MetricRow("g", "m", 1.0, 1.0, "bigger"), "better must be one of"),
    (lambda: MetricRow("g", "m", 1.0, 1.0, "higher", tolerance=-0.1), "tolerance must be >= 0"),
])
def test_bad_row_is_one_clear_error(make, message):
    with pytest.raises(SynthscapeError, match=message):
        make()
