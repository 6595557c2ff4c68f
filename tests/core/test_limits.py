"""The voxel cap a user can raise: a bad SYNTHSCAPE_MAX_VOXELS is one line naming it, never a traceback."""

import pytest

from synthscape.cli import main
from synthscape.core.errors import SynthscapeError
from synthscape.core.limits import DEFAULT_MAX_VOXELS, MAX_VOXELS_ENV, check_voxels, max_voxels


@pytest.mark.parametrize("text", ["abc", "0", "-5", "1.5e9"])
def test_a_bad_cap_is_refused_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv(MAX_VOXELS_ENV, text)
    with pytest.raises(SynthscapeError, match=f"^{MAX_VOXELS_ENV}=.* must be a positive whole number of voxels$"):
        max_voxels()


def test_the_cap_reads_the_variable_and_defaults(monkeypatch):
    monkeypatch.delenv(MAX_VOXELS_ENV, raising=False)
    assert max_voxels() == DEFAULT_MAX_VOXELS == 2**28
    monkeypatch.setenv(MAX_VOXELS_ENV, "1_000")
    assert max_voxels() == 1000 and check_voxels([10, 10, 10], "x") == 1000
    with pytest.raises(SynthscapeError, match=r"^x declares 10x10x11 = 1,100 voxels, more than the cap of 1,000"):
        check_voxels([10, 10, 11], "x")


def test_a_bad_cap_stops_a_command_in_one_line_writing_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(MAX_VOXELS_ENV, "lots")
    assert main(["-q", "simulate", "lung-ct", "--count", "1", "--size", "16", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"synthscape: error: {MAX_VOXELS_ENV}=lots must be a positive whole number of voxels"
    assert list(tmp_path.iterdir()) == []
