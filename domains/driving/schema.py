"""The driving domain's condition schema: what a perception team orders rare data by."""

from __future__ import annotations

from synthscape.core.conditions import ConditionSchema

WEATHERS = ("clear", "rain", "fog", "snow")
TIMES = ("day", "dusk", "night")
SCENARIOS = ("normal", "pedestrian_crossing", "stalled_vehicle", "debris", "cyclist")
VIEWS = ("dashcam", "aerial")

SCHEMA = ConditionSchema({"weather": list(WEATHERS), "time": list(TIMES), "scenario": list(SCENARIOS)})
