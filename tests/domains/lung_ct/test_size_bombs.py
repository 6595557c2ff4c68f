"""Size bombs (issue 17): a file whose header declares far more than the file holds, or more voxels than
the cap, is refused from its header before any voxel is read or decoded: a SynthscapeError of one line
naming the file, exit code 2 from the command line with nothing written and no traceback, and a peak
memory (the child's peak RSS) within 100 MiB of an ordinary refusal.

Every bomb is made here in a few bytes: NIfTI headers that declare 2048^3 voxels or 512 MiB over a tiny
body, DICOM series that declare 16384 x 16384 slices over a few bytes of RLE, native pixel data shorter
than its Rows x Columns.
"""

from __future__ import annotations

import gzip
import resource
import struct
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless

from synthscape.core.errors import SynthscapeError
from synthscape.core.limits import MAX_VOXELS_ENV
from synthscape.domains.lung_ct.dicom import read_dicom_series, write_dicom_series
from synthscape.domains.lung_ct.nifti import read_nifti, write_nifti

MIB = 2**20
HEADROOM = 100 * MIB  # what refusing a bomb may cost above an ordinary refusal
# The measured children may map at most this much: a regression fails to allocate (and the test
# fails on its message) rather than taking 16 GiB of a shared machine.
ADDRESS_LIMIT = 12 * 2**30
MEASURE = (f"import resource, subprocess, sys\n"
           f"resource.setrlimit(resource.RLIMIT_AS, ({ADDRESS_LIMIT}, {ADDRESS_LIMIT}))\n"
           "done = subprocess.run(sys.argv[2:])\n"
           "with open(sys.argv[1], 'w') as out:\n"
           "    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
           "sys.exit(done.returncode)\n")
# Reads each path given, in order, and prints for each its refusal and the peak RSS so far (bytes).
READ = ("import resource, sys\nfrom pathlib import Path\n"
        "from synthscape.core.errors import SynthscapeError\n"
        "from synthscape.domains.lung_ct.dicom import read_dicom_series\n"
        "from synthscape.domains.lung_ct.nifti import read_nifti\n"
        "for path in map(Path, sys.argv[1:]):\n"
        "    try:\n        (read_dicom_series if path.is_dir() else read_nifti)(path)\n"
        "    except SynthscapeError as error:\n        message = str(error)\n"
        "    else:\n        message = 'read'\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, message.replace(chr(10), ' | '))\n")


# ---------------------------------------------------------------- the bombs


def nifti_bomb(path: Path, shape, dtype=np.int16, body: bytes = b"", header=nib.Nifti1Header) -> Path:
    """A NIfTI file whose header declares ``shape`` of ``dtype`` over ``body`` (gzipped for .nii.gz)."""
    hdr = header()
    hdr.set_data_shape(shape)
    hdr.set_data_dtype(dtype)
    hdr.set_sform(np.eye(4), code=1)
    hdr["vox_offset"] = hdr.single_vox_offset
    raw = hdr.binaryblock + b"\0" * 4 + body
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)
    return path


def rle_frame() -> bytes:
    """One tiny RLE Lossless frame: two segments (high and low bytes) of 4 runs of 128 zeros each."""
    segment = b"\x81\x00" * 4
    return struct.pack("<16I", 2, 64, 64 + len(segment), *[0] * 13) + segment * 2


def dicom_bomb(source: Path, folder: Path, side: int, rle: bool = True) -> Path:
    """A copy of the series ``source`` declaring ``side`` x ``side`` slices: over one tiny RLE frame each,
    or (``rle=False``) over the source's own native pixel data."""
    folder.mkdir()
    for path in sorted(source.iterdir()):
        ds = pydicom.dcmread(path)
        ds.Rows = ds.Columns = side
        if rle:
            ds.file_meta.TransferSyntaxUID = RLELossless
            ds.PixelData = encapsulate([rle_frame()])
            ds["PixelData"].VR = "OB"
        ds.save_as(folder / path.name)
    return folder


def truncated(source: Path, folder: Path) -> Path:
    """A copy of ``source`` whose second slice file is cut 20 bytes into its pixel data."""
    folder.mkdir()
    for k, path in enumerate(sorted(source.iterdir())):
        data = path.read_bytes()
        (folder / path.name).write_bytes(data[:-20] if k == 1 else data)
    return folder


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Every bomb (and an ordinary volume and a corrupt file), with the words its refusal must say."""
    root = tmp_path_factory.mktemp("bombs")
    hu = np.full((8, 8, 3), -1000.0, dtype=np.float32)
    series = root / "series"
    write_dicom_series(series, hu, np.diag([1.0, 1.0, 2.5, 1.0]), series_description="bomb source", derivation="test")
    noise = np.random.default_rng(0).bytes(200_000)  # incompressible: passes the 1032x bound, holds too little
    write_nifti(root / "ordinary.nii.gz", np.zeros((16, 16, 16)), np.eye(4))
    (root / "corrupt.nii.gz").write_bytes(b"not gzip at all")
    return {
        "ordinary": (root / "ordinary.nii.gz", ()),
        "series": (series, ()),
        "corrupt": (root / "corrupt.nii.gz", ("unreadable NIfTI file",)),
        "nifti-2048^3": (nifti_bomb(root / "huge.nii.gz", (2048,) * 3), ("declares 2048x2048x2048", "cap")),
        "nifti2-2048^3": (nifti_bomb(root / "huge2.nii.gz", (2048,) * 3, header=nib.Nifti2Header),
                          ("declares 2048x2048x2048", "cap")),
        "nifti-4d": (nifti_bomb(root / "fourd.nii.gz", (256, 256, 256, 64)), ("declares 256x256x256x64", "cap")),
        "nifti-512MiB": (nifti_bomb(root / "tiny.nii.gz", (512, 512, 1024)),
                         ("536,871,264 bytes", "inflate to at most")),
        "nifti-100MiB": (nifti_bomb(root / "noise.nii.gz", (512, 512, 200), body=noise), ("inflates to", "truncated")),
        "nii-short": (nifti_bomb(root / "short.nii", (512, 512, 1024), body=b"\0" * 1000), ("the file holds 1,352",)),
        "rle-16384": (dicom_bomb(series, root / "rle16384", 16384),
                      ("series of 3 file(s) declares 16384x16384x3", "cap")),
        "rle-8192": (dicom_bomb(series, root / "rle8192", 8192), ("slice-0001.dcm declares more than it holds",
                                                                  "RLE Lossless data decode to at most")),
        "native-short": (dicom_bomb(series, root / "native", 4096, rle=False),
                         ("slice-0001.dcm pixel data unreadable: PixelData holds 128 bytes", "need 33,554,432 bytes")),
        "native-cut": (truncated(series, root / "cut"), ("slice-0002.dcm pixel data unreadable", "truncated")),
    }


BOMBS = ["nifti-2048^3", "nifti2-2048^3", "nifti-4d", "nifti-512MiB", "nifti-100MiB", "nii-short", "rle-16384",
         "rle-8192", "native-short", "native-cut"]


def read(path: Path):
    """A NIfTI file or a DICOM series folder, read as the lung-ct data set reads it."""
    return read_dicom_series(path) if path.is_dir() else read_nifti(path)


@pytest.fixture
def small_allocations():
    """While a test runs, this process may map only 4 GiB more than it has: a regression that allocates
    what a bomb declares (16 GiB) fails to, and its test fails on the message, not the machine."""
    vm_size = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm_size + 4 * 2**30 if hard == resource.RLIM_INFINITY else min(vm_size + 4 * 2**30, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def refused(path: Path, words, message: str) -> None:
    """``message`` is one line, names ``path`` and says each of ``words``."""
    assert message and "\n" not in message.strip() and str(path) in message, message
    for word in words:
        assert word in message, message


# ---------------------------------------------------------------- the readers


@pytest.mark.parametrize("name", BOMBS)
def test_reader_refuses_bomb_from_its_header(bombs, name, small_allocations):
    path, words = bombs[name]
    with pytest.raises(SynthscapeError) as excinfo:
        read(path)
    refused(path, words, str(excinfo.value))


def test_the_voxel_cap_can_be_lowered_and_raised(bombs, monkeypatch, small_allocations):
    """Lowered below 16^3, the ordinary volume is refused; raised, the 16384^2 RLE series passes the cap
    and its RLE data is then found too short for what it declares."""
    ordinary, _ = bombs["ordinary"]
    assert read(ordinary)[0].shape == (16, 16, 16)
    assert read(bombs["series"][0])[0].shape == (8, 8, 3)
    monkeypatch.setenv(MAX_VOXELS_ENV, "4095")
    with pytest.raises(SynthscapeError) as excinfo:
        read(ordinary)
    refused(ordinary, ("16x16x16 = 4,096 voxels, more than the cap of 4,095", MAX_VOXELS_ENV), str(excinfo.value))
    monkeypatch.setenv(MAX_VOXELS_ENV, str(2**30))
    path, _ = bombs["rle-16384"]
    with pytest.raises(SynthscapeError) as excinfo:
        read(path)
    refused(path, ("declares more than it holds", "decode to at most"), str(excinfo.value))


# ---------------------------------------------------------------- peak memory, and the command line


def start(argv: list, rss_file: Path) -> subprocess.Popen:
    """Python with ``argv``, in a child of a small measuring interpreter that writes the child's peak RSS
    to ``rss_file`` (its own, a fresh interpreter's, is the floor: a child of pytest would inherit pytest's)."""
    command = [sys.executable, "-c", MEASURE, rss_file, sys.executable, *argv]
    return subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(child: subprocess.Popen, rss_file: Path) -> tuple[int, str, str, int]:
    """(exit code, stdout, stderr, peak RSS in bytes) of a child ``start`` began."""
    stdout, stderr = child.communicate(timeout=300)
    assert rss_file.exists(), stderr
    return child.returncode, stdout, stderr, int(rss_file.read_text()) * 1024  # ru_maxrss is in KiB on Linux


def test_each_bomb_peaks_near_an_ordinary_refusal(bombs, tmp_path):
    """The readers alone, in one fresh interpreter, refuse a corrupt file and then every bomb: the peak
    RSS after each bomb (the most it reached so far, so each bomb's own peak is at most that) stays
    within 100 MiB of the peak after the ordinary refusal, and each refusal is the one seen in-process."""
    names = ["corrupt", *BOMBS]
    code, stdout, stderr, _ = finish(start(["-c", READ, *(bombs[name][0] for name in names)], tmp_path / "rss"),
                                     tmp_path / "rss")
    lines = stdout.splitlines()
    assert code == 0 and len(lines) == len(names), stdout + stderr
    peaks = {name: int(line.split(" ", 1)[0]) for name, line in zip(names, lines)}
    base = peaks["corrupt"]
    for name, peak in peaks.items():
        print(f"{name}: peak RSS so far {peak / MIB:.0f} MiB ({(peak - base) / MIB:+.0f} MiB)")
        assert peak < base + HEADROOM, f"{name}: peak RSS {peak / MIB:.0f} MiB, ordinary {base / MIB:.0f} MiB"
    for name, line in zip(names, lines):
        refused(bombs[name][0], bombs[name][1], line.split(" ", 1)[1])


def data_folder(root: Path, volume: Path) -> Path:
    """A lung-ct data folder of one row naming ``volume`` (a file or a series folder), copied in."""
    root.mkdir()
    target = root / volume.name
    if volume.is_dir():
        target.mkdir()
        for path in volume.iterdir():
            (target / path.name).write_bytes(path.read_bytes())
    else:
        target.write_bytes(volume.read_bytes())
    (root / "labels.csv").write_text(f"path,nodule,size,kind\n{volume.name},absent,none,none\n")
    return target


def test_train_refuses_bombs_in_one_line_writing_nothing(bombs, tmp_path):
    """``synthscape train lung-ct`` on a data folder holding a bomb: exit 2, one line naming the file, no
    traceback, no run folder, and a peak RSS within 100 MiB of training refused on a corrupt file."""
    names = ["corrupt", "nifti-2048^3", "rle-16384"]
    children, targets = {}, {}
    for name in names:
        targets[name] = data_folder(tmp_path / name, bombs[name][0])
        argv = ["-m", "synthscape", "train", "lung-ct", "--data", tmp_path / name, "--model", "gan",
                "--out", tmp_path / f"{name}-run", "--steps", "1"]
        children[name] = start(argv, tmp_path / f"{name}.rss")
    results = {name: finish(child, tmp_path / f"{name}.rss") for name, child in children.items()}
    base = results["corrupt"][3]
    for name, (code, _, _, peak) in results.items():
        print(f"train {name}: exit {code}, peak RSS {peak / MIB:.0f} MiB ({(peak - base) / MIB:+.0f} MiB)")
        assert peak < base + HEADROOM, f"{name}: peak RSS {peak / MIB:.0f} MiB, ordinary {base / MIB:.0f} MiB"
    for name, (code, _, stderr, _) in results.items():
        assert code == 2 and "Traceback" not in stderr and stderr.count("\n") == 1, stderr
        refused(targets[name], bombs[name][1], stderr)
        assert not (tmp_path / f"{name}-run").exists()
