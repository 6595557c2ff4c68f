"""A rendered scene and the canvas renderers paint it on. numpy + OpenCV, no torch.

Renderers paint back to front (painter's algorithm) on a ``Canvas`` that keeps, beside the RGB
picture, the per-pixel depth (metres from the camera), a semantic class map and an instance map.
Each object is painted in one go (all its parts between ``begin`` and the next ``begin``), so
the canvas can count the pixels it would cover with nothing in front (``full_area``); what is
left of it in the instance map at the end is what is visible. Labels come from there: a box is
emitted only for an object whose visible fraction passes a threshold, tight on its visible
pixels. The weather and time effects read ``depth``, ``semantic`` and ``lights``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Detection categories (COCO category id = index + 1; YOLO class = index).
CATEGORIES = ("car", "truck", "pedestrian", "cyclist", "traffic_light", "traffic_sign", "debris")
# Semantic classes of the mask PNGs (pixel value = index).
SEMANTIC = ("sky", "road", "lane_marking", "sidewalk", "building", "vegetation", "terrain", "pole",
            "traffic_light", "traffic_sign", "car", "truck", "pedestrian", "cyclist", "debris")
SEMANTIC_ID = {name: i for i, name in enumerate(SEMANTIC)}
SKY_DEPTH = 1000.0  # metres given to the sky (fog saturates long before)


@dataclass
class SceneObject:
    """One labelled object of a scene (a candidate for a box), as the canvas recorded it."""

    instance: int  # value in Scene.instances (1-based)
    category: str  # one of CATEGORIES
    distance: float  # metres from the camera (dashcam) or from the drone (aerial)
    full_area: int = 0  # pixels it would cover inside the image with nothing in front


@dataclass
class Light:
    """A light source the night effect lights up: headlights, tail lights, street lamps, signals."""

    x: float  # pixel column of its centre
    y: float  # pixel row
    radius: float  # pixels of the glowing core
    colour: tuple[int, int, int]  # RGB
    kind: str  # "headlight", "taillight", "street", "signal", "window"


@dataclass
class Box:
    """A detection box, tight on an object's visible pixels (pixel-inclusive extents)."""

    category: str
    x: int  # left column of the first visible pixel
    y: int  # top row
    w: int  # columns from the first to the last visible pixel, inclusive
    h: int
    visible: float  # visible fraction: visible pixels / full_area
    instance: int
    area: int  # visible pixels


@dataclass
class Scene:
    """A rendered clear-day scene: picture, per-pixel labels, objects and lights (what the weather
    and time effects and the label writers read)."""

    image: np.ndarray  # uint8 [H, W, 3] RGB: clear day, before any weather or time effect
    depth: np.ndarray  # float32 [H, W] metres from the camera; SKY_DEPTH for the sky
    semantic: np.ndarray  # uint8 [H, W], index into SEMANTIC
    instances: np.ndarray  # int32 [H, W], 0 background, else SceneObject.instance
    objects: list[SceneObject] = field(default_factory=list)
    lights: list[Light] = field(default_factory=list)
    view: str = "dashcam"

    def boxes(self, min_visible: float = 0.25, min_pixels: int = 4) -> list[Box]:
        """Boxes of the objects at least ``min_visible`` visible (and ``min_pixels`` big), tight on
        their visible pixels."""
        return visible_boxes(self.instances, self.objects, min_visible, min_pixels)


def visible_boxes(instances: np.ndarray, objects: list[SceneObject], min_visible: float = 0.25,
                  min_pixels: int = 4) -> list[Box]:
    """Visible pixel counts and tight extents per instance, from one sort of the labelled pixels."""
    flat = instances.ravel()
    labelled = np.flatnonzero(flat != 0)  # (7x faster than flatnonzero on the int32 map itself)
    order = np.argsort(flat[labelled], kind="stable")
    ids, pixels = flat[labelled][order], labelled[order]
    if ids.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ys, xs = np.divmod(pixels, instances.shape[1])
    extent = {int(k): (int(x0), int(y0), int(x1), int(y1), int(n)) for k, x0, y0, x1, y1, n in zip(
        ids[starts], np.minimum.reduceat(xs, starts), np.minimum.reduceat(ys, starts),
        np.maximum.reduceat(xs, starts), np.maximum.reduceat(ys, starts), np.diff(np.r_[starts, ids.size]))}
    boxes = []
    for obj in objects:
        if obj.instance not in extent:
            continue
        x0, y0, x1, y1, area = extent[obj.instance]
        visible = area / max(obj.full_area, 1)
        if area >= min_pixels and visible >= min_visible:
            boxes.append(Box(obj.category, x0, y0, x1 - x0 + 1, y1 - y0 + 1, round(min(visible, 1.0), 4), obj.instance, area))
    return boxes


def label_map_boxes(semantic: np.ndarray, instances: np.ndarray, min_pixels: int = 4) -> list[Box]:
    """Boxes of a label map's objects: one per instance of ``instances`` (0: none) whose pixels are
    mostly of a detection category in ``semantic``, tight on those pixels. What a generated sample's
    labels are: the layout it rendered, not a scene's depth order (``visible`` is 1: whatever the
    layout hides of an object, it hid before the generator saw it)."""
    flat, classes = np.asarray(instances).ravel(), np.asarray(semantic).ravel()
    objects = []
    for instance in np.unique(flat[flat > 0]):
        mine = classes[flat == instance]
        name = SEMANTIC[int(np.bincount(mine).argmax())]
        if name in CATEGORIES:
            objects.append(SceneObject(int(instance), name, 0.0, full_area=int(mine.size)))
    return visible_boxes(np.asarray(instances), objects, 0.0, min_pixels)


_CV2_FROM = 256  # masks of this many pixels and more are copied with cv2 (numpy: less overhead below)


def _put(dst: np.ndarray, value, local: tuple[slice, slice], where: np.ndarray, where8: np.ndarray | None) -> None:
    """dst[where] = value: a per-pixel array (cut to ``local``, broadcast if narrower) or a scalar
    / colour. cv2.copyTo (with ``where8``, the mask as uint8) is 3-10x faster than numpy's
    ``copyto(where=)`` on a sprite, but has more overhead on a handful of pixels."""
    per_pixel = type(value) is np.ndarray and value.ndim == dst.ndim
    if where8 is None:
        value = value[local] if per_pixel else np.asarray(value).astype(dst.dtype)
        np.copyto(dst, value, where=where[..., None] if dst.ndim == 3 else where)
        return
    if not per_pixel:
        value = np.full(dst.shape, np.asarray(value).astype(dst.dtype), dst.dtype)
    else:
        value = value[local]
        if value.shape != dst.shape:
            value = np.ascontiguousarray(np.broadcast_to(value, dst.shape))
        value = value.astype(dst.dtype, copy=False)
    cv2.copyTo(value, where8, dst)


class Canvas:
    """Picture, depth, semantic and instance maps painted together, back to front."""

    def __init__(self, height: int, width: int):
        self.height, self.width = int(height), int(width)
        self.image = np.zeros((self.height, self.width, 3), dtype=np.uint8)
        self.depth = np.full((self.height, self.width), SKY_DEPTH, dtype=np.float32)
        self.semantic = np.zeros((self.height, self.width), dtype=np.uint8)
        self.instances = np.zeros((self.height, self.width), dtype=np.int32)
        self.objects: list[SceneObject] = []
        self.lights: list[Light] = []
        self._current = 0  # the object whose parts are being painted (0: background)

    def begin(self, category: str, distance: float) -> int:
        """Start a new object; parts painted until the next ``begin``/``end`` belong to it."""
        if category not in CATEGORIES:
            raise ValueError(f"unknown object category {category!r}; valid: {', '.join(CATEGORIES)}")
        self._current = len(self.objects) + 1
        self.objects.append(SceneObject(self._current, category, float(distance)))
        return self._current

    def end(self) -> None:
        """Back to painting background (road, buildings, sky)."""
        self._current = 0

    def paint(self, mask: np.ndarray, origin: tuple[int, int], colour, semantic: str, depth) -> None:
        """Paint ``mask`` (bool or uint8 [h, w], top-left at ``origin`` = (row, col), clipped to the canvas).

        ``colour``: RGB triple or uint8 [h, w, 3]; ``depth``: metres, scalar or [h, w] (or anything
        that broadcasts to it). Masked copies go through cv2.copyTo: numpy's ``copyto(where=)``
        is 5-20x slower, and 3-channel masks broadcast from [h, w] slower still.
        """
        r0, c0 = int(origin[0]), int(origin[1])
        h, w = mask.shape
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + h, self.height), min(c0 + w, self.width)
        if rr1 <= rr0 or cc1 <= cc0:
            return
        local = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
        where = mask[local]
        where = where if where.dtype == bool else where != 0
        target = (slice(rr0, rr1), slice(cc0, cc1))
        instances = self.instances[target]
        if self._current:
            self.objects[-1].full_area += int(np.count_nonzero(where & (instances != self._current)))
        where8 = where.view(np.uint8) if where.size >= _CV2_FROM else None
        _put(self.image[target], colour, local, where, where8)
        _put(self.depth[target], depth, local, where, where8)
        _put(self.semantic[target], SEMANTIC_ID[semantic], local, where, where8)
        _put(instances, self._current, local, where, where8)

    def polygon(self, points, colour, semantic: str, depth) -> None:
        """Fill a polygon given as [[x, y], ...] pixel coordinates (hard edges: labels stay exact)."""
        pts = np.asarray(points, dtype=np.float64)
        lo = np.floor(pts.min(axis=0)).astype(int)
        hi = np.ceil(pts.max(axis=0)).astype(int)
        if hi[0] < 0 or hi[1] < 0 or lo[0] >= self.width or lo[1] >= self.height:
            return
        mask = np.zeros((hi[1] - lo[1] + 1, hi[0] - lo[0] + 1), dtype=np.uint8)
        cv2.fillPoly(mask, [np.rint(pts - lo).astype(np.int32)], 1)
        self.paint(mask, (lo[1], lo[0]), colour, semantic, depth)

    def ellipse(self, centre, axes, colour, semantic: str, depth, angle: float = 0.0) -> None:
        """Fill an ellipse: centre (x, y), half axes (a, b) in pixels, rotated by ``angle`` degrees."""
        a = max(axes[0], axes[1])
        lo = np.floor(np.asarray(centre) - a - 1).astype(int)
        size = int(np.ceil(2 * a)) + 3
        mask = np.zeros((size, size), dtype=np.uint8)
        c = (int(round(centre[0] - lo[0])), int(round(centre[1] - lo[1])))
        cv2.ellipse(mask, c, (max(int(round(axes[0])), 0), max(int(round(axes[1])), 0)), angle, 0, 360, 1, -1)
        self.paint(mask, (lo[1], lo[0]), colour, semantic, depth)

    def rect(self, x0: float, y0: float, x1: float, y1: float, colour, semantic: str, depth) -> None:
        """Fill the pixels with x0 <= col < x1, y0 <= row < y1 (rounded)."""
        c0, r0, c1, r1 = (int(round(v)) for v in (x0, y0, x1, y1))
        if c1 > c0 and r1 > r0:
            self.paint(np.ones((r1 - r0, c1 - c0), dtype=bool), (r0, c0), colour, semantic, depth)

    def light(self, x: float, y: float, radius: float, colour, kind: str) -> None:
        """Record a light source at pixel (x, y) for the night effect (see ``Light``)."""
        self.lights.append(Light(float(x), float(y), float(radius), tuple(int(c) for c in colour), kind))

    def scene(self, view: str) -> Scene:
        """The painted scene (sharing the canvas's arrays), ``view``: "dashcam" or "aerial"."""
        return Scene(self.image, self.depth, self.semantic, self.instances, self.objects, self.lights, view)
