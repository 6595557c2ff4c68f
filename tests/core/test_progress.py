"""Progress off a terminal: a few plain lines, no carriage returns (core/progress.py)."""

import logging
import subprocess
import sys

from synthscape.core.progress import PlainProgress, progress


def lines_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "synthscape"]


def test_plain_progress_logs_each_quarter_once(caplog):
    caplog.set_level(logging.INFO, "synthscape")
    bar = PlainProgress(range(100), total=100, desc="simulate", unit="volume")
    bar.set_postfix({"loss": "0.5"})
    assert list(bar) == list(range(100))
    lines = lines_of(caplog)
    assert [line.split(" volume")[0] for line in lines] == [f"simulate: {n}/100" for n in (25, 50, 75, 100)]
    assert all("%)" in line and "volume/s" in line and line.endswith(", loss 0.5") for line in lines)


def test_a_resumed_bar_logs_only_the_quarters_still_ahead(caplog):
    caplog.set_level(logging.INFO, "synthscape")
    list(PlainProgress(range(51, 101), total=100, desc="train gan", unit="step", initial=50))
    assert [line.split(" step")[0] for line in lines_of(caplog)] == ["train gan: 75/100", "train gan: 100/100"]


def test_unknown_totals_log_once_at_the_end_and_disabled_bars_never(caplog):
    caplog.set_level(logging.INFO, "synthscape")
    list(PlainProgress(iter(range(7)), total=None, desc="reading", unit="image"))
    assert [line.split(" in ")[0] for line in lines_of(caplog)] == ["reading: 7 image"]
    caplog.clear()
    bar = progress(range(10), desc="sampling", unit="batch", enabled=False)
    assert list(bar) == list(range(10)) and lines_of(caplog) == []


def test_off_a_terminal_a_command_writes_a_few_plain_lines(tmp_path):
    """``synthscape simulate ... 2> log``: stderr is a file, so no bar redraws itself in it."""
    log = tmp_path / "log"
    with log.open("w") as stderr:
        subprocess.run([sys.executable, "-m", "synthscape", "simulate", "driving", "--out", str(tmp_path / "d"),
                        "--count", "8", "--size", "32"], stderr=stderr, check=True)
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert 2 <= len(lines) <= 6, lines
    assert lines[-2].startswith("synthscape: simulate driving (dashcam): 8/8 scene (100%)")
    assert lines[-1] == f"synthscape: simulated 8 driving samples in {tmp_path / 'd'}"
