"""``labels.csv``: one row per sample, ``path``, then one column per condition attribute, then
domain extras (mask paths, box files, seeds). Shared by every domain. numpy-free, torch-free."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from synthscape.core.conditions import ConditionSchema
from synthscape.core.errors import SynthscapeError
from synthscape.core.fileio import atomic_path

LABELS = "labels.csv"


def write_labels(folder: Path, rows: Sequence[Mapping[str, object]], schema: ConditionSchema,
                 extras: Sequence[str] = ()) -> Path:
    """Write ``folder/labels.csv`` atomically with columns path, *schema, *extras."""
    columns = ["path", *schema.names, *extras]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="raise", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    with atomic_path(folder / LABELS) as tmp:
        tmp.write_text(buffer.getvalue())
    return folder / LABELS


def read_labels(folder: Path, schema: ConditionSchema, file_columns: Iterable[str] = ("path",)) -> list[dict[str, str]]:
    """Read and check ``folder/labels.csv``: every attribute column present, every value valid,
    every file named in ``file_columns`` present. Paths stay relative to ``folder``."""
    path = Path(folder) / LABELS
    if not path.is_file():
        raise SynthscapeError(f"{path} not found: a data set folder holds its files plus labels.csv")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in ("path", *schema.names) if c not in header]
        if missing:
            raise SynthscapeError(f"{path} lacks column(s) {', '.join(missing)}; expected path, {', '.join(schema.names)}")
        rows = list(reader)
    if not rows:
        raise SynthscapeError(f"{path} has no rows")
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        try:
            schema.validate({name: row[name] for name in schema.names})
        except SynthscapeError as exc:
            raise SynthscapeError(f"{path} line {line}: {exc}") from None
        if row["path"] in seen:
            raise SynthscapeError(f"{path} line {line}: {row['path']} is listed twice")
        seen.add(row["path"])
        for column in file_columns:
            if row.get(column) and not (Path(folder) / row[column]).exists():
                raise SynthscapeError(f"{path} line {line}: {column} {row[column]} does not exist in {folder}")
    return rows


def unlisted_files(root: Path, found: Iterable[Path], listed: Iterable[str]) -> list[str]:
    """Paths under ``root`` (relative, POSIX) in ``found`` that labels.csv does not list, neither
    themselves nor a folder above them (a DICOM series is listed by its folder)."""
    listed = set(listed)
    names = {Path(p).relative_to(root).as_posix() for p in found}
    return sorted(n for n in names if n not in listed and not any(n.startswith(d + "/") for d in listed))


def conditions_of(rows: Sequence[Mapping[str, str]], schema: ConditionSchema) -> list[dict[str, str]]:
    return [{name: row[name] for name in schema.names} for row in rows]
