"""Weather and time of day as an augmentation for real pictures: a dictionary in, a new one out.

    from synthscape.domains.driving.augment import WeatherTime
    out = WeatherTime("fog", "dusk")({"image": rgb_uint8, "boxes": boxes}, seed=0)

The effects only recolour pixels, so boxes (and any other key) come back unchanged, as copies.
Optional keys ``depth`` (metres, [H, W]), ``semantic`` ([H, W], index into ``scene.SEMANTIC``) and
``lights`` (``scene.Light`` objects or dicts of their fields) make the effects physical; without
them fog uses a flat-ground depth guess and night keeps the picture's own brightest spots lit.
"""

from __future__ import annotations

import copy

import numpy as np

from synthscape.domains.driving.scene import Light
from synthscape.domains.driving.schema import TIMES, WEATHERS
from synthscape.domains.driving.weather import apply_conditions


class WeatherTime:
    """Render a sample's picture at ``time`` of day in ``weather`` (see ``weather.apply_conditions``)."""

    def __init__(self, weather: str = "clear", time: str = "day"):
        if weather not in WEATHERS:
            raise ValueError(f"unknown weather {weather!r}; valid: {', '.join(WEATHERS)}")
        if time not in TIMES:
            raise ValueError(f"unknown time {time!r}; valid: {', '.join(TIMES)}")
        self.weather, self.time = weather, time

    def __repr__(self) -> str:
        return f"WeatherTime(weather={self.weather!r}, time={self.time!r})"

    def __call__(self, sample: dict, seed: int | None = None) -> dict:
        """A new dict: ``image`` recoloured, every other key a copy of the input's. ``seed`` None
        draws fresh randomness; an int gives the same picture every time."""
        if "image" not in sample:
            raise ValueError("sample needs an 'image': uint8 HxWx3 RGB array")
        image = sample["image"]
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"image must be uint8 HxWx3 RGB, got {got}")
        lights = [light if isinstance(light, Light) else Light(**light) for light in sample.get("lights", ())]
        out = {key: copy.deepcopy(value) for key, value in sample.items() if key != "image"}
        out["image"] = apply_conditions(image, self.weather, self.time, np.random.default_rng(seed),
                                        depth=sample.get("depth"), semantic=sample.get("semantic"),
                                        lights=lights)
        return out
