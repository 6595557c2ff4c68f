"""Driving images -> training tensors: an image folder with labels.csv (and optionally COCO JSON).

Every image is read once with OpenCV, checked (readable, 8-bit colour, one size for the whole
set), resized so its shorter side is the training size (INTER_AREA) and centre-cropped square,
then kept in memory as uint8: 500 images at 64x64 are 6 MB. For a layout model each row's
``mask`` (a label-map PNG of the image's size, pixel value = class id, or values that
``label_mapping.json`` names) is read beside it and cut the same way, nearest-neighbour, and so
is its ``instances`` map (16-bit object ids) when every row names one: the boxes of renders of
these layouts come from it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.labelmap import apply_mapping, folder_mapping
from synthscape.domains.driving.cityscapes import INSTANCE_SUFFIXES, cityscapes_instances
from synthscape.domains.driving.formats import COCO_FILE, read_coco_images
from synthscape.domains.driving.schema import LABELS, SCHEMA, VIEWS, DrivingMeta
from synthscape.domains.labels import LABELS as LABELS_CSV
from synthscape.domains.labels import conditions_of, inside, read_labels, unlisted_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
PREVIEW = "preview.png"  # the sample grid beside generated images, not a training image


def read_rgb(path: Path) -> np.ndarray:
    """An 8-bit colour image as RGB uint8 [H, W, 3]; anything else is an error naming the file."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SynthscapeError(f"{path} cannot be read as an image (OpenCV could not decode it)")
    if image.dtype != np.uint8:
        raise SynthscapeError(f"{path} is {image.dtype}; driving images must be 8-bit colour")
    if image.ndim == 2 or image.shape[2] == 1:
        raise SynthscapeError(f"{path} is grayscale; driving images must be colour (RGB)")
    if image.shape[2] == 4:
        if (image[..., 3] != 255).any():
            raise SynthscapeError(f"{path} has a transparent alpha channel; driving images must be opaque RGB")
        image = image[..., :3]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label_map(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A label-map PNG (one channel, 8 or 16 bit) of the picture's ``shape`` (height, width)."""
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None:
        raise SynthscapeError(f"{path} cannot be read as a label map (OpenCV could not decode it)")
    if labels.ndim != 2 or labels.dtype not in (np.uint8, np.uint16):
        raise SynthscapeError(f"{path} is a {labels.dtype} image of shape {list(labels.shape)}; a label map is one "
                              "channel of 8- or 16-bit class values")
    if labels.shape != shape:
        raise SynthscapeError(f"{path} is {labels.shape[1]}x{labels.shape[0]} but its picture is {shape[1]}x{shape[0]}")
    return labels


def square(image: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Resize the shorter side to ``size`` and crop the centre to ``size`` x ``size`` (``nearest``:
    nearest-neighbour, for label maps, whose values are classes, not intensities)."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return resized[top: top + size, left: left + size]


def listed_paths(root: Path, rows: list[dict[str, str]], allow_outside_paths: bool = False) -> list[Path]:
    """labels.csv rows -> image paths, after checking that every image file under ``root`` (and
    every image of a COCO JSON, when the folder has one) has a row; a COCO ``file_name`` leaving
    ``root`` is refused as labels.csv's are (``inside``), unless ``allow_outside_paths``."""
    paths = [root / row["path"] for row in rows]
    # label folders hold no pictures: masks/ and instances/, and any folder a row's label map is in
    # (Cityscapes' gtFine/<split>/<city>/ also holds *_color.png renderings of the labels)
    label_dirs = {(root / row[c]).parent for row in rows for c in ("mask", "instances") if row.get(c)}
    found = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.name != PREVIEW
             and p.parent.name not in ("masks", "instances") and p.parent not in label_dirs]
    if stray := unlisted_files(root, found, (row["path"] for row in rows)):
        raise SynthscapeError(f"{root / stray[0]} has no row in {root / LABELS_CSV} ({len(stray)} image(s) unlisted)")
    coco = root / COCO_FILE
    if coco.is_file():
        image_dir = root / "images" if (root / "images").is_dir() else root
        names = read_coco_images(coco)
        for index, name in enumerate(names if not allow_outside_paths else ()):
            inside(root, image_dir.relative_to(root) / name, f"{coco} images[{index}].file_name")
        in_coco = {(image_dir / name).resolve() for name in names}
        for missing in sorted(p for p in in_coco if not p.is_file()):
            raise SynthscapeError(f"{coco} lists {missing.name}, which does not exist in {image_dir}")
        in_labels = {p.resolve() for p in paths}
        for missing in sorted(in_coco - in_labels):
            raise SynthscapeError(f"{missing} is in {coco} but has no row in {root / LABELS_CSV}")
        for missing in sorted(in_labels - in_coco):
            raise SynthscapeError(f"{missing} has a row in {root / LABELS_CSV} but is not in {coco}")
    return paths


class DrivingDataset(Dataset):
    """``(image [3, S, S] in [-1, 1], condition indices [3])`` for every row of labels.csv, and with
    ``layout`` the row's label map ``[S, S]`` (int64 ``LABELS`` ids) third.

    ``progress`` shows a bar while reading, on a terminal only (tqdm's ``disable=None``), so that
    a log or a captured stderr holds the messages alone. Images outside ``root`` (absolute,
    ``..``, symbolic links leading out) are refused unless ``allow_outside_paths``."""

    def __init__(self, root: str | Path, size: int | None = None, progress: bool = True,
                 allow_outside_paths: bool = False, layout: bool = False):
        root = Path(root)
        self.size = int(size or 64)
        if self.size < 8:
            raise SynthscapeError(f"driving training size must be at least 8 pixels, got {self.size}")
        file_columns = ("path", "mask", "instances") if layout else ("path",)
        rows = read_labels(root, SCHEMA, file_columns=file_columns, allow_outside_paths=allow_outside_paths)
        self.paths = listed_paths(root, rows, allow_outside_paths)
        self.conditions = SCHEMA.encode(conditions_of(rows, SCHEMA))
        self.images = np.empty((len(rows), 3, self.size, self.size), dtype=np.uint8)
        self.layouts = np.empty((len(rows), self.size, self.size), dtype=np.uint8) if layout else None
        with_objects = layout and all(row.get("instances") for row in rows)
        self.instances = np.empty((len(rows), self.size, self.size), dtype=np.int32) if with_objects else None
        mapping = folder_mapping(root, rows, LABELS, "image", "driving") if layout else None
        source_size = None
        for i, path in enumerate(tqdm(self.paths, desc="reading images", unit="image", disable=None if progress else True)):
            image = read_rgb(path)
            if source_size is None:
                source_size = image.shape[:2]
            elif image.shape[:2] != source_size:
                raise SynthscapeError(f"{path} is {image.shape[1]}x{image.shape[0]} but {self.paths[0].name} is "
                                      f"{source_size[1]}x{source_size[0]}; a data set has one image size")
            self.images[i] = square(image, self.size).transpose(2, 0, 1)
            if layout:
                mask = root / rows[i]["mask"]
                labels = apply_mapping(read_label_map(mask, image.shape[:2]), mapping, LABELS, f"the label map {mask}")
                self.layouts[i] = square(labels, self.size, nearest=True)
            if self.instances is not None:
                objects = read_label_map(root / rows[i]["instances"], image.shape[:2])
                if rows[i]["instances"].endswith(INSTANCE_SUFFIXES):  # Cityscapes: stuff ids below 1000
                    objects = cityscapes_instances(objects)
                self.instances[i] = square(objects, self.size, nearest=True)
        views = {row.get("view") for row in rows}
        view = views.pop() if len(views) == 1 and views <= set(VIEWS) else None
        self.meta = asdict(DrivingMeta(size=self.size, source_size=list(source_size), view=view))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        image = torch.from_numpy(self.images[index]).float() / 127.5 - 1.0
        condition = torch.from_numpy(self.conditions[index])
        if self.layouts is None:
            return image, condition
        return image, condition, torch.from_numpy(self.layouts[index].astype(np.int64))
