"""The driving domain's condition schema: what a perception team orders rare data by."""

from __future__ import annotations

from dataclasses import dataclass

from synthscape.core.errors import SynthscapeError
from synthscape.core.limits import check_voxels
from synthscape.core.schema.conditions import ConditionSchema
from synthscape.core.schema.config import whole, whole_list
from synthscape.core.schema.labelmap import LabelMapSchema
from synthscape.domains.driving.scene import SEMANTIC

WEATHERS = ("clear", "rain", "fog", "snow")
TIMES = ("day", "dusk", "night")
SCENARIOS = ("normal", "pedestrian_crossing", "stalled_vehicle", "debris", "cyclist")
VIEWS = ("dashcam", "aerial")

SCHEMA = ConditionSchema({"weather": list(WEATHERS), "time": list(TIMES), "scenario": list(SCENARIOS)})
# The layout (label map) classes: the simulator's semantic classes, pixel value = id, as its mask
# PNGs have them. Sky is class 0, the background of a street scene. Weather and time change no
# class, so one layout renders under every condition.
LABELS = LabelMapSchema(SEMANTIC)


@dataclass(frozen=True)
class DrivingMeta:
    """What a driving data set records for training (config.json's ``domain_meta``)."""

    size: int | None = None  # pixels per side of the square training images
    source_size: tuple[int, int] | list[int] | None = None  # (height, width) of the data set's first picture
    view: str | None = None  # dashcam or aerial when labels.csv says so for every row: the layouts the simulator draws

    def __post_init__(self) -> None:
        if self.size is not None:
            check_voxels([whole(self.size, "size", 1, 2**62)] * 2, "size", "is")
        if self.source_size is not None:
            check_voxels(whole_list(self.source_size, "source_size", 1, 2**62, (2, 2)), "source_size", "is")
        if self.view is not None and self.view not in VIEWS:
            raise SynthscapeError(f"driving view must be one of {', '.join(VIEWS)}, got {self.view!r}")
