"""The README's promises: its test command is the one CI runs; no module grows past ~400 lines."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_commands() -> list[str]:
    return [line.strip() for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("    python3 -m venv")]


def test_readme_has_two_setup_commands_and_ci_runs_the_test_one():
    main_job, tests = setup_commands()
    assert main_job.endswith("synthscape run")
    assert tests.endswith("pytest -q")
    assert tests in (ROOT / ".ci" / "run").read_text().splitlines()


def test_modules_stay_small():
    sources = [p for d in ("synthscape", "core", "domains", "exports") for p in (ROOT / d).rglob("*.py")]
    assert sources
    long = {p.relative_to(ROOT).as_posix(): n for p in sources if (n := len(p.read_text().splitlines())) > 400}
    assert not long, f"modules over 400 lines: {long}"
