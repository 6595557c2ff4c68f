"""``labels.csv``: one row per sample, ``path``, then one column per condition attribute, then
domain extras (mask paths, box files, seeds). Shared by every domain. numpy-free, torch-free."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from synthscape.core.errors import SynthscapeError, shown
from synthscape.core.files.atomic import atomic_path
from synthscape.core.schema.conditions import ConditionSchema

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
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return folder / LABELS


def read_labels(folder: Path, schema: ConditionSchema, file_columns: Iterable[str] = ("path",),
                allow_outside_paths: bool = False) -> list[dict[str, str]]:
    """Read and check ``folder/labels.csv``: every attribute column present, every value valid,
    every file named in ``file_columns`` present. Paths stay relative to ``folder``. UTF-8, with or
    without the byte-order mark spreadsheet programs put first.

    A file column may not leave ``folder`` (``inside``): no absolute path, no ``..``, no symbolic
    link leading out, nor one among the files of a folder it names (a DICOM series), so that a
    shared data folder cannot pull any file of this machine into a model and its report. With
    ``allow_outside_paths`` (for scans kept elsewhere) names are joined to ``folder`` unchecked."""
    path = Path(folder) / LABELS
    if not path.is_file():
        raise SynthscapeError(f"{path} not found: a data set folder holds its files plus labels.csv")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            missing = [c for c in ("path", *schema.names) if c not in header]
            if missing:
                raise SynthscapeError(f"{path} lacks column(s) {', '.join(missing)}; expected path, "
                                      f"{', '.join(schema.names)}{_other_domain(header, schema)}")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SynthscapeError(f"{path} is not a UTF-8 CSV file ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if not rows:
        raise SynthscapeError(f"{path} has no rows")
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        if None in row or None in row.values():  # csv.DictReader's marks of surplus and missing fields
            raise SynthscapeError(f"{path} line {line}: {'more' if None in row else 'fewer'} fields than the "
                                  f"{len(header)} columns of the header, expected one value per column")
        try:
            schema.validate({name: row[name] for name in schema.names})
        except SynthscapeError as exc:
            raise SynthscapeError(f"{path} line {line}: {exc}") from None
        if not row["path"].strip():
            raise SynthscapeError(f"{path} line {line}: empty path, expected a file relative to {folder}")
        if row["path"] in seen:
            raise SynthscapeError(f"{path} line {line}: {shown(row['path'])} is listed twice")
        seen.add(row["path"])
        for column in file_columns:
            if row.get(column):
                _check_file(Path(folder), row[column], f"{path} line {line}: {column}", allow_outside_paths)
    return rows


def _check_file(folder: Path, name: str, where: str, allow_outside_paths: bool) -> None:
    """``folder/name`` exists and, unless ``allow_outside_paths``, neither it nor a file directly
    in it (when it is a folder: a DICOM series, read file by file) leaves ``folder``."""
    if not allow_outside_paths:
        inside(folder, name, where)
    if not _exists(folder, name, where):
        raise SynthscapeError(f"{where} {shown(name)} does not exist in {folder}")
    if not allow_outside_paths and (folder / name).is_dir():
        try:
            entries = sorted((folder / name).iterdir())
        except OSError as exc:
            raise SynthscapeError(f"{where} {shown(name)} is a folder that cannot be listed ({shown(str(exc))})") from None
        for entry in entries:
            inside(folder, entry.relative_to(folder), f"{where} {shown(name)}: its file")


OUTSIDE_OPTION = "--allow-outside-paths (in a pipeline file: allow_outside_paths: true)"


def inside(folder: Path, name: str | Path, where: str) -> Path:
    """``folder/name``, refused in one line naming ``where`` and ``name`` when it leaves ``folder``:
    an absolute path, a ``..`` part, or a symbolic link (of the file or a folder above it) that
    resolves outside ``folder``. The one check of every file a data folder names: labels.csv
    columns, the files of a DICOM series folder, a COCO JSON's ``file_name``s."""
    parts = Path(name).parts
    if Path(name).is_absolute():
        reason = "is an absolute path"
    elif ".." in parts:
        reason = "climbs out with .."
    else:
        try:
            target, root = (folder / name).resolve(), folder.resolve()
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL, a name too long, a symbolic link loop
            raise SynthscapeError(f"{where} {shown(repr(str(name)))} is not a usable file name ({shown(str(exc))})") from None
        if target == root or target.is_relative_to(root):
            return folder / name
        reason = "leads out through a symbolic link"
    raise SynthscapeError(f"{where} {shown(str(name), 240)} {reason}; the files a data folder names must lie inside "
                          f"{folder} unless you pass {OUTSIDE_OPTION}")


def _exists(folder: Path, name: str, where: str) -> bool:
    """Whether ``folder/name`` exists; a name no file system can hold (a NUL, too long) is an error."""
    try:
        return (folder / name).exists()
    except (OSError, ValueError) as exc:
        raise SynthscapeError(f"{where} {shown(repr(name))} is not a usable file name ({shown(str(exc))})") from None


def _other_domain(header: Sequence[str | None], schema: ConditionSchema) -> str:
    """`` (a lung-ct data set, where driving data is expected)`` when the header is another
    registered domain's: a model or reader of one domain pointed at the other's data."""
    from synthscape.domains.base import available_domains  # at call time: the domains import this module

    domains = available_domains().values()
    expected = next((d.name for d in domains if d.schema == schema), None)
    found = next((d.name for d in domains if d.schema != schema and set(d.schema.names) <= set(header)), None)
    if found is None:
        return ""
    return f" (its columns are a {found} data set's, where {expected or 'other'} data is expected)"


def unlisted_files(root: Path, found: Iterable[Path], listed: Iterable[str]) -> list[str]:
    """Paths under ``root`` (relative, POSIX) in ``found`` that labels.csv does not list, neither
    themselves nor a folder above them (a DICOM series is listed by its folder)."""
    listed = set(listed)
    names = {Path(p).relative_to(root).as_posix() for p in found}
    return sorted(n for n in names if n not in listed and not any(n.startswith(d + "/") for d in listed))


def conditions_of(rows: Sequence[Mapping[str, str]], schema: ConditionSchema) -> list[dict[str, str]]:
    """Each labels.csv row reduced to its condition (the schema's attributes, without path and
    domain extras), ready for ``schema.encode``."""
    return [{name: row[name] for name in schema.names} for row in rows]
