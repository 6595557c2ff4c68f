"""Helpers of the hostile-input tests (issue 17): a folder's exact state, and a refusal's shape."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from synthscape.cli import main


def snapshot(root: Path) -> dict[str, str]:
    """Every file, folder and link under ``root``: a hash of each file's bytes, each link's target."""
    return {p.relative_to(root).as_posix(): (f"-> {os.readlink(p)}" if p.is_symlink() else
                                             hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def refused(argv: list, capsys, root: Path | None = None, *expected: str) -> str:
    """Run the CLI on ``argv``: exit 2, one stderr line holding each of ``expected``, no traceback,
    and (given ``root``, the inputs and every neighbour of the output) ``root`` exactly as before.
    Returns the line."""
    before = snapshot(root) if root is not None else None
    assert main(["-q", *(str(a) for a in argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("synthscape: error: ") and "\n" not in err and "Traceback" not in err, err
    for text in expected:
        assert text in err, (text, err)
    if root is not None:
        assert snapshot(root) == before  # nothing written, no input touched
    return err
