"""Weather and time-of-day effects on a clear-day picture: numpy + OpenCV, vectorised, seeded.

``apply_conditions`` first sets the time of day, then the weather. That is the order light takes:
the sun or the lamps light the scene (time), then the air between the scene and the camera
scatters and hides that lit scene (fog, rain streaks, snowflakes). So fog swallows distant lamps
while it glows around near ones, and at night rain streaks and snowflakes are dim except where a
lamp lights them. The time step returns, beside the picture, the illumination it used (ambient
plus lamp light) and the weather step colours its airlight, streaks, flakes and ground snow with it.

The effects only recolour pixels, never move them, so boxes and masks stay valid. Every random
number comes from the ``rng`` passed in: the same generator state gives the same picture.

Works on rendered scenes (``depth``, ``semantic``, ``lights`` from the renderer) and on real
pictures (none of them): then depth is a flat-ground proxy (``depth_proxy``), the sky is the bright
part above a horizon at 45 % of the height, and lamps are the picture's own brightest pixels.
"""

from __future__ import annotations

from functools import cached_property
from typing import Sequence

import cv2
import numpy as np

from synthscape.domains.driving.scene import SEMANTIC_ID, SKY_DEPTH, Light
from synthscape.domains.driving.schema import TIMES, WEATHERS

HORIZON = 0.45  # proxy horizon of a real picture, as a fraction of the height from the top
CAMERA_HEIGHT = 1.5  # metres, for the flat-ground depth proxy
_SKY = SEMANTIC_ID["sky"]
_ROAD = (SEMANTIC_ID["road"], SEMANTIC_ID["lane_marking"])
_GROUND = _ROAD + (SEMANTIC_ID["sidewalk"], SEMANTIC_ID["terrain"])
# Per light kind: (glare of the glowing disc, light it throws on its surroundings).
_KIND = {"headlight": (1.0, 0.45), "taillight": (0.7, 0.12), "street": (1.0, 0.8), "signal": (0.8, 0.15),
         "window": (0.45, 0.12)}
_LIGHT_GAIN = {"day": 0.0, "dusk": 0.35, "night": 1.0}  # how much lamps glow at each time
DUSK_TINT = (0.85, 0.6, 0.48)  # warmer and dimmer
NIGHT_AMBIENT = (0.075, 0.09, 0.16)  # dark and blue, after a gamma of NIGHT_GAMMA
NIGHT_GAMMA = 1.4


def _lut(gamma: float = 1.0, gain=(1.0, 1.0, 1.0)) -> np.ndarray:
    """uint8 -> float32 per-channel table: (v / 255) ** gamma * gain (one cv2.LUT call)."""
    v = (np.arange(256, dtype=np.float64) / 255) ** gamma
    return (v[:, None] * np.asarray(gain, dtype=np.float64)).astype(np.float32).reshape(256, 1, 3)


_LINEAR, _DUSK, _NIGHT_GAMMA, _NIGHT = _lut(), _lut(1.0, DUSK_TINT), _lut(NIGHT_GAMMA), _lut(NIGHT_GAMMA, NIGHT_AMBIENT)


def apply_conditions(image: np.ndarray, weather: str, time: str, rng: np.random.Generator, *,
                     depth: np.ndarray | None = None, semantic: np.ndarray | None = None,
                     lights: Sequence[Light] = (), visibility: float | None = None,
                     haze_scale: float = 1.0) -> np.ndarray:
    """A new uint8 RGB picture of ``image`` (a clear-day uint8 [H, W, 3] RGB) at ``time`` in ``weather``.

    ``depth`` (metres, sky = SKY_DEPTH), ``semantic`` (index into SEMANTIC) and ``lights`` make the
    effects physical; without ``depth`` fog uses ``depth_proxy`` (flat ground below a horizon at
    45 % of the height, far above it), without ``semantic`` the sky is guessed from the bright
    pixels above that horizon and rain/snow only treat the ground as the rows below it. Inputs
    are never modified. ``visibility`` (metres, where fog leaves 5 % of the contrast) is drawn
    from 30-150 m unless given; ``haze_scale`` stretches that range and the haze of rain and
    snow, for cameras far above the ground (a drone at 80 m in 30 m fog sees nothing).
    """
    if weather not in WEATHERS:
        raise ValueError(f"unknown weather {weather!r}; valid: {', '.join(WEATHERS)}")
    if time not in TIMES:
        raise ValueError(f"unknown time {time!r}; valid: {', '.join(TIMES)}")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be uint8 [H, W, 3] RGB, got {image.dtype} {image.shape}")
    for name, array in (("depth", depth), ("semantic", semantic)):
        if array is not None and np.shape(array) != image.shape[:2]:
            raise ValueError(f"{name} must be [H, W] = {image.shape[:2]}, got {np.shape(array)}")
    if weather == "clear" and time == "day":
        return image.copy()
    ctx = _Context(image, depth, semantic, lights, time)
    x, air, surf = _TIMES[time](ctx)
    ctx.visibility, ctx.haze_scale = visibility, float(haze_scale)
    x = _WEATHERS[weather](x, ctx, rng, air, surf)
    return cv2.convertScaleAbs(x, alpha=255.0)  # saturating round to uint8, a new array


def depth_proxy(height: int, width: int, horizon: float = HORIZON) -> np.ndarray:
    """Depth [H, 1] in metres for a picture without one: flat ground seen from CAMERA_HEIGHT below
    the horizon row (a focal length of 0.9 * width, about 58 degrees across), SKY_DEPTH above it."""
    rows = np.arange(height, dtype=np.float32) + 0.5 - horizon * height
    ground = CAMERA_HEIGHT * 0.9 * width / np.maximum(rows, 1e-3)
    return np.where(rows > 0, np.minimum(ground, SKY_DEPTH), SKY_DEPTH).astype(np.float32)[:, None]


class _Context:
    """What the effects read about one picture, each worked out once and only when needed."""

    def __init__(self, image, depth, semantic, lights, time):
        self.image, self.time = image, time
        self.h, self.w = image.shape[:2]
        self._depth, self.semantic = depth, (None if semantic is None else np.asarray(semantic))
        self.lights = [light for light in lights if -4 * light.radius < light.x < self.w + 4 * light.radius
                       and -4 * light.radius < light.y < self.h + 4 * light.radius]
        self.scale = 4 if min(self.h, self.w) >= 32 else 1  # low-resolution layers for smooth light
        self.small = (max(1, -(-self.w // self.scale)), max(1, -(-self.h // self.scale)))  # (w, h)

    @cached_property
    def depth(self) -> np.ndarray:  # [H, W] or [H, 1] metres
        if self._depth is None:
            return depth_proxy(self.h, self.w)
        return np.asarray(self._depth, dtype=np.float32)

    @cached_property
    def luma(self) -> np.ndarray:  # [H, W] in [0, 1] of the clear-day picture
        return cv2.cvtColor(self.image, cv2.COLOR_RGB2GRAY).astype(np.float32) * np.float32(1 / 255)

    @cached_property
    def sky(self) -> np.ndarray:  # [H, W] float32 in [0, 1]
        if self.semantic is not None:
            return self.mask((_SKY,))
        if self._depth is not None:
            return (self.depth >= 0.999 * SKY_DEPTH).astype(np.float32)
        rows = np.arange(self.h, dtype=np.float32)[:, None]
        above = np.clip((HORIZON * self.h - rows) / (0.05 * self.h + 1), 0, 1)
        return above * np.clip((self.luma - 0.35) / 0.3, 0, 1)

    @cached_property
    def sky_rows(self) -> int:  # rows 0 .. sky_rows - 1 hold all the sky
        rows = np.flatnonzero(self.sky.any(axis=1))
        return int(rows[-1] + 1) if rows.size else 0

    @cached_property
    def horizon(self) -> float:  # lowest row the sky reaches (proxy when there is no sky)
        rows = np.flatnonzero(self.sky.mean(axis=1) > 0.02)
        return float(rows[-1] + 1) if rows.size else HORIZON * self.h

    def mask(self, classes) -> np.ndarray | None:  # [H, W] float32 of the given semantic classes
        if self.semantic is None:
            return None
        table = np.zeros(256, dtype=np.float32)
        table[list(classes)] = 1
        return cv2.LUT(self.semantic.astype(np.uint8, copy=False), table)

    def ground(self) -> np.ndarray:  # ground (snow, lamp pools): semantic, else rows under the horizon
        mask = self.mask(_GROUND)
        if mask is None:
            rows = np.arange(self.h, dtype=np.float32)[:, None]
            ramp = np.clip((rows - HORIZON * self.h) / (0.15 * self.h), 0, 1) * 0.6
            mask = np.repeat(ramp, self.w, axis=1)
        return mask

    def full(self, layer: np.ndarray) -> np.ndarray:
        """A (1, 1, 3) colour or a low-resolution [h, w, 3] layer as a new [H, W, 3] float32 array."""
        layer = np.asarray(layer, dtype=np.float32)
        if layer.shape[:2] == (1, 1):  # (np.full with a colour is slow: a length-3 inner loop)
            row = np.tile(layer.ravel(), self.w)
            return np.ascontiguousarray(np.broadcast_to(row, (self.h, row.size))).reshape(self.h, self.w, 3)
        if layer.shape[:2] == (self.h, self.w):
            return layer.copy()
        return cv2.resize(layer, (self.w, self.h), interpolation=cv2.INTER_LINEAR)

    def noise(self, rng: np.random.Generator, cells: int) -> np.ndarray:
        """Smooth noise [H, W] in about [0, 1]: ``cells`` random values across the width, upsampled."""
        cw = max(2, cells)
        ch = max(2, int(round(cells * self.h / self.w)))
        coarse = cv2.resize(rng.random((ch, cw), dtype=np.float32), self.small, interpolation=cv2.INTER_CUBIC)
        return cv2.resize(coarse, (self.w, self.h), interpolation=cv2.INTER_LINEAR)  # (cubic all the way: slow)


def _m3(mask: np.ndarray) -> np.ndarray:
    return cv2.merge([mask, mask, mask])


def _blend(x: np.ndarray, target: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """x + weight * (target - x), weight [H, W] in [0, 1]; a new array."""
    return cv2.blendLinear(target, x, weight, 1 - weight)


def _paint_sky(x: np.ndarray, ctx: _Context, top, bottom, texture: float) -> None:
    """In place: sky pixels blended to a vertical gradient from ``top`` (row 0) to ``bottom`` (the
    horizon), keeping ``texture`` of their clouds. Only the rows that hold sky are touched."""
    rows = ctx.sky_rows
    if rows == 0:
        return
    t = np.clip(np.arange(rows, dtype=np.float32) / max(ctx.horizon, 1.0), 0, 1)[:, None] ** 1.5
    tex = (1 - texture) + (texture * 1.4) * ctx.luma[:rows]
    target = cv2.merge([tex * (a + (b - a) * t) for a, b in zip(top, bottom)])
    x[:rows] = _blend(x[:rows], target, ctx.sky[:rows])


def _add_glare(x: np.ndarray, ctx: _Context, gain: float) -> None:
    """In place, additive: each light a bright disc (its colour, whiter in the core) with a
    gaussian halo falling off with distance, sized by its radius."""
    for light in ctx.lights:
        r = max(float(light.radius), 0.5)
        sigma = 2.2 * r + 1.0
        reach = int(np.ceil(r + 3 * sigma))
        x0, x1 = max(int(light.x) - reach, 0), min(int(light.x) + reach + 1, ctx.w)
        y0, y1 = max(int(light.y) - reach, 0), min(int(light.y) + reach + 1, ctx.h)
        if x1 <= x0 or y1 <= y0:
            continue
        dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - light.y)[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - light.x)[None, :]
        dist = np.sqrt(dx * dx + dy * dy)
        core = np.clip(r + 0.5 - dist, 0, 1)
        halo = np.exp(-0.5 * np.minimum(np.maximum(dist - r, 0) / sigma, 9) ** 2)
        colour = np.float32(light.colour) / 255
        strength = gain * _KIND.get(light.kind, (0.6, 0.2))[0]
        disc, ring = (0.6 * colour + 0.84) * strength, 0.55 * colour * strength
        x[y0:y1, x0:x1] += cv2.merge([core * disc[c] + halo * ring[c] for c in range(3)])


def _throw_light(ctx: _Context, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Light the lamps throw, at low resolution [h, w, 3]: around each (everything near it) and
    on the ground only (street lamp pools below them, headlight cones towards the camera)."""
    sw, sh = ctx.small
    s = ctx.scale
    around = np.zeros((sh, sw, 3), dtype=np.float32)
    ground = np.zeros((sh, sw, 3), dtype=np.float32)
    vanish_x, vanish_y = ctx.w / 2, ctx.horizon
    for light in ctx.lights:
        colour = np.float32(light.colour) / 255
        power = gain * _KIND.get(light.kind, (0.6, 0.2))[1]
        lx, ly, r = light.x / s, light.y / s, max(light.radius, 0.5) / s
        sigma = 5 * r + 1.5
        reach = int(np.ceil(3 * sigma))
        x0, x1 = max(int(lx) - reach, 0), min(int(lx) + reach + 1, sw)
        y0, y1 = max(int(ly) - reach, 0), min(int(ly) + reach + 1, sh)
        if x1 > x0 and y1 > y0:
            dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - ly)[:, None]
            dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - lx)[None, :]
            around[y0:y1, x0:x1] += np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))[..., None] * colour * power
        value = tuple(float(c) for c in colour * power * 0.8)
        if light.kind == "street":  # a pool on the ground below the lamp
            foot = ly + 14 * r
            cv2.ellipse(ground, (int(lx), int(foot)), (int(10 * r + 2), int(4 * r + 1)), 0, 0, 360, value, -1)
        elif light.kind == "headlight":  # a cone away from the vanishing point (towards the camera)
            d = np.array([light.x - vanish_x, max(light.y - vanish_y, 1.0)], dtype=np.float64)
            d /= np.linalg.norm(d)
            length, side = 30 * r + 4, np.array([-d[1], d[0]])
            tip = np.array([lx, ly + r])
            end = tip + d * length
            cone = np.stack([tip, end + side * 0.45 * length, end - side * 0.45 * length])
            cv2.fillPoly(ground, [np.rint(cone).astype(np.int32)], value)
    if ground.any():
        k = max(3, (int(min(sw, sh) / 12) | 1))
        ground = cv2.GaussianBlur(ground, (k, k), 0)
    return around, ground


def _lit(ctx: _Context, base, gain: float):
    """(air, surf): light in the air, low resolution (base + light around lamps), and light on
    surfaces, full resolution (air + pools and cones on the ground)."""
    around, ground = _throw_light(ctx, gain)
    air = around + np.float32(base)
    if not ground.any():
        return air, ctx.full(air)
    on_ground = cv2.resize(ctx.ground(), ctx.small, interpolation=cv2.INTER_AREA)  # soft edges, 1 resize
    return air, ctx.full(air + ground * on_ground[..., None])


def _day(ctx: _Context):
    one = np.ones((1, 1, 3), dtype=np.float32)
    return cv2.LUT(ctx.image, _LINEAR), one, one


def _dim(ctx: _Context, ambient, gain: float, lit_lut: np.ndarray, unlit_lut: np.ndarray):
    """The picture under a weaker ``ambient`` light plus its own lamps (or a plain curve without)."""
    air = surf = np.float32(ambient).reshape(1, 1, 3)
    if ctx.lights:
        air, surf = _lit(ctx, ambient, gain)
        return cv2.multiply(cv2.LUT(ctx.image, lit_lut), surf), air, surf
    return cv2.LUT(ctx.image, unlit_lut), air, surf


def _dusk(ctx: _Context):
    """Warmer, dimmer; orange (horizon) to purple (top) sky; lights glowing weakly."""
    out, air, surf = _dim(ctx, DUSK_TINT, _LIGHT_GAIN["dusk"], _LINEAR, _DUSK)
    _paint_sky(out, ctx, (0.32, 0.2, 0.45), (1.0, 0.55, 0.28), 0.35)
    _add_glare(out, ctx, _LIGHT_GAIN["dusk"])
    return out, air, surf


def _night(ctx: _Context):
    """Much darker and bluer (gamma 1.4, blue-biased ambient), dark blue-black sky, lights as
    glowing discs with halos, lighting what is near them, pools under street lamps, cones in
    front of headlights. Without lights the picture's brightest pixels below the sky keep glowing."""
    out, air, surf = _dim(ctx, NIGHT_AMBIENT, _LIGHT_GAIN["night"], _NIGHT_GAMMA, _NIGHT)
    _paint_sky(out, ctx, (0.008, 0.01, 0.03), (0.045, 0.05, 0.09), 0.3)
    if ctx.lights:
        _add_glare(out, ctx, _LIGHT_GAIN["night"])
    elif ctx.luma.max() > 0.82:  # a real picture: its brightest spots (lamps, signs) stay lit and glow
        bright = np.clip((ctx.luma - 0.82) / 0.15, 0, 1) * (1 - ctx.sky)
        spots = cv2.multiply(cv2.LUT(ctx.image, _LINEAR), _m3(bright))
        glow = cv2.GaussianBlur(cv2.resize(spots, ctx.small, interpolation=cv2.INTER_AREA), (0, 0), 2)
        out += 0.5 * spots + 1.5 * ctx.full(glow)
    return out, air, surf


def _fog_blend(x, ctx, air, visibility: float, grey, rng) -> np.ndarray:
    """I * t + A * (1 - t), t = exp(-beta * d * n), beta = 3 / visibility, n smooth patchiness;
    airlight A = grey * (light in the air) ** 0.7: light grey by day, dark but lamp-lit at night."""
    beta = np.float32(3.0 / visibility)
    optical = np.minimum(ctx.depth * (beta * (0.8 + 0.4 * ctx.noise(rng, 4))), 60)  # no float32 denormals
    t = cv2.exp(-optical)
    airlight = ctx.full(np.float32(grey) * np.power(np.asarray(air, dtype=np.float32), 0.7))
    return _blend(airlight, x, t)


def _clear(x, ctx, rng, air, surf):
    return x


def _fog(x, ctx, rng, air, surf):
    """Depth-aware fog, visibility 30-150 m (beta = 3 / visibility)."""
    visibility = float(rng.uniform(30, 150)) * ctx.haze_scale if ctx.visibility is None else ctx.visibility
    return _fog_blend(x, ctx, air, visibility, (0.8, 0.82, 0.85), rng)


def _rain(x, ctx, rng, air, surf):
    """Slanted semi-transparent streaks, slight blur and contrast loss, an overcast (darker) sky,
    and with ``semantic`` a wet road: darker, with the smeared reflection of what stands above it."""
    h, w = ctx.h, ctx.w
    out = _fog_blend(cv2.GaussianBlur(x, (3, 3), 0.8), ctx, air, float(rng.uniform(250, 600)) * ctx.haze_scale,
                     (0.62, 0.64, 0.68), rng)
    rows = ctx.sky_rows
    if rows:
        overcast = ctx.full(np.float32(0.5) * air)[:rows] if np.ndim(air) == 3 and np.shape(air)[0] > 1 else \
            np.ascontiguousarray(np.broadcast_to(np.tile(np.float32(0.5) * np.ravel(air), w), (rows, 3 * w))).reshape(rows, w, 3)
        out[:rows] = _blend(out[:rows], overcast, ctx.sky[:rows] * 0.6)
    road = ctx.mask(_ROAD)
    if road is not None and road.any():
        k = max(3, h // 6)
        smear = cv2.blur(out, (1, k), anchor=(0, k - 1))  # mean of the k rows above each pixel
        puddles = np.clip(ctx.noise(rng, 6) - 0.3, 0, 0.5) * 0.7
        wet = cv2.scaleAdd(out, 0.55, cv2.multiply(smear, _m3(puddles)))
        if ctx.lights:  # lights mirrored as vertical streaks on the wet road
            layer = np.zeros((ctx.small[1], ctx.small[0], 3), dtype=np.float32)
            gain = 0.1 + 0.6 * _LIGHT_GAIN[ctx.time]
            for light in ctx.lights:
                r = max(light.radius, 0.5) / ctx.scale
                cx, cy = int(light.x / ctx.scale), int(light.y / ctx.scale + 8 * r + 1)
                value = tuple(float(c) / 255 * gain for c in light.colour)
                cv2.ellipse(layer, (cx, cy), (int(r + 1), int(7 * r + 2)), 0, 0, 360, value, -1)
            wet += ctx.full(cv2.GaussianBlur(layer, (3, 5), 0))
        out = _blend(out, wet, road)
    # streaks: far ones short, thin and faint, near ones long and brighter
    layer = np.zeros((h, w), dtype=np.float32)
    slant = float(rng.uniform(-0.35, 0.35))
    count = int(rng.integers(200, 400) * h * w / 65536) + 4
    for share, lengths, value in ((0.65, (0.03, 0.07), 0.45), (0.35, (0.08, 0.16), 0.8)):
        n = max(1, int(count * share))
        length = rng.uniform(*lengths, size=n) * h
        y0 = rng.uniform(-length, h)
        x0 = rng.uniform(-abs(slant) * h * 0.16, w + abs(slant) * h * 0.16, size=n)
        ends = np.stack([x0, y0, x0 + slant * length, y0 + length], axis=1)
        cv2.polylines(layer, list(np.rint(ends).astype(np.int32).reshape(n, 2, 2)), False, value, 1)
    layer = cv2.GaussianBlur(layer, (3, 3), 0.6) * np.float32(0.6)
    streak = ctx.full(np.float32([0.78, 0.8, 0.85]) * np.power(np.asarray(air, np.float32), 0.7))
    return _blend(out, streak, layer)


def _snow(x, ctx, rng, air, surf):
    """Flakes of several sizes (near ones big and soft), partly white ground (road, sidewalk,
    terrain; noisy coverage), a slight haze."""
    h, w = ctx.h, ctx.w
    out = _fog_blend(x, ctx, air, float(rng.uniform(150, 400)) * ctx.haze_scale, (0.85, 0.87, 0.9), rng)
    cover = 0.5 * ctx.noise(rng, 6) + 0.3 * ctx.noise(rng, 20) + 0.2 * ctx.noise(rng, 60)
    level = 0.5 - (float(rng.uniform(0.45, 0.85)) - 0.5) * 0.5  # the noise's quantile for that coverage
    cover = np.clip((cover - level) / 0.12 + 0.5, 0, 0.92) * ctx.ground()
    snow = cv2.multiply(ctx.full(surf), (0.92, 0.94, 0.98, 0))
    out = _blend(out, snow, cover)
    area = h * w / 65536
    flakes = np.zeros((h, w), dtype=np.float32)
    far = int(rng.integers(400, 700) * area) + 2  # single pixels
    flakes[rng.integers(0, h, far), rng.integers(0, w, far)] = rng.uniform(0.4, 0.8, far).astype(np.float32)
    mid = np.zeros((h, w), dtype=np.float32)
    n = int(rng.integers(150, 300) * area) + 1  # 2-3 pixels
    mid[rng.integers(0, h, n), rng.integers(0, w, n)] = 0.9
    near = np.zeros((h, w), dtype=np.float32)
    big = int(rng.integers(10, 30) * area) + 1  # out of focus, close to the lens
    radius = rng.uniform(1.5, 4.0, big) * max(h, w) / 256
    for cx, cy, r in zip(rng.integers(0, w, big), rng.integers(0, h, big), radius):
        cv2.circle(near, (int(cx), int(cy)), max(1, int(round(r))), 0.85, -1)
    near = cv2.GaussianBlur(near, (0, 0), max(0.8, max(h, w) / 256))
    layer = np.maximum(np.maximum(flakes, cv2.dilate(mid, np.ones((2, 2), np.uint8))), near)
    flake = ctx.full(np.float32([0.95, 0.96, 1.0]) * np.maximum(np.asarray(air, np.float32), 0.25))
    return _blend(out, np.maximum(flake, out, out=flake), layer)  # flakes never darken what is behind


_TIMES = {"day": _day, "dusk": _dusk, "night": _night}
_WEATHERS = {"clear": _clear, "rain": _rain, "fog": _fog, "snow": _snow}
