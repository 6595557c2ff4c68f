"""The driving domain's condition schema: what a perception team orders rare data by."""

from __future__ import annotations

from dataclasses import dataclass

from synthscape.core.limits import check_voxels
from synthscape.core.schema.conditions import ConditionSchema
from synthscape.core.schema.config import whole, whole_list

WEATHERS = ("clear", "rain", "fog", "snow")
TIMES = ("day", "dusk", "night")
SCENARIOS = ("normal", "pedestrian_crossing", "stalled_vehicle", "debris", "cyclist")
VIEWS = ("dashcam", "aerial")

SCHEMA = ConditionSchema({"weather": list(WEATHERS), "time": list(TIMES), "scenario": list(SCENARIOS)})


@dataclass(frozen=True)
class DrivingMeta:
    """What a driving data set records for training (config.json's ``domain_meta``)."""

    size: int | None = None  # pixels per side of the square training images
    source_size: tuple[int, int] | list[int] | None = None  # (height, width) of the data set's first picture

    def __post_init__(self) -> None:
        if self.size is not None:
            check_voxels([whole(self.size, "size", 1, 2**62)] * 2, "size", "is")
        if self.source_size is not None:
            check_voxels(whole_list(self.source_size, "source_size", 1, 2**62, (2, 2)), "source_size", "is")
