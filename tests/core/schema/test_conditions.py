import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.conditions import ConditionPrior, ConditionSchema

SCHEMA = ConditionSchema({"weather": ["clear", "rain", "fog", "snow"], "time": ["day", "dusk", "night"]})


def test_encode_decode_round_trip():
    conditions = [{"weather": "fog", "time": "night"}, {"time": "day", "weather": "clear"}]
    encoded = SCHEMA.encode(conditions)
    assert encoded.dtype == np.int64 and encoded.shape == (2, 2)
    assert encoded.tolist() == [[2, 2], [0, 0]]
    assert SCHEMA.decode(encoded) == [{"weather": "fog", "time": "night"}, {"weather": "clear", "time": "day"}]


def test_serialisation_keeps_order():
    data = SCHEMA.to_dict()
    assert list(data) == ["weather", "time"]
    assert ConditionSchema.from_dict(data) == SCHEMA


@pytest.mark.parametrize(
    "condition, message",
    [
        ({"wether": "fog"}, "unknown condition attribute 'wether'; valid attributes: weather, time"),
        ({"weather": "hail"}, "unknown value 'hail' for condition attribute 'weather'; valid values: clear, rain, fog, snow"),
    ],
)
def test_unknown_attribute_or_value_lists_valid_ones(condition, message):
    with pytest.raises(SynthscapeError) as info:
        SCHEMA.validate(condition)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_incomplete_condition_cannot_be_encoded():
    with pytest.raises(SynthscapeError, match="lacks attribute"):
        SCHEMA.encode([{"weather": "fog"}])


def test_indices_shape_and_range_are_checked():
    with pytest.raises(SynthscapeError, match=r"shape \[batch, 2\]"):
        SCHEMA.decode(np.zeros((3, 3), dtype=np.int64))
    with pytest.raises(SynthscapeError, match="'time' must lie in 0..2"):
        SCHEMA.decode(np.array([[0, 3]]))


def test_parse_cli_pairs():
    assert ConditionSchema.parse(["weather=fog", "time = night"]) == {"weather": "fog", "time": "night"}
    with pytest.raises(SynthscapeError, match="attribute=value"):
        ConditionSchema.parse(["weather"])


def test_missing_attributes_follow_joint_training_frequencies():
    # fog only ever at night; clear mostly by day
    rows = [[2, 2]] * 30 + [[0, 0]] * 60 + [[0, 1]] * 10
    prior = ConditionPrior.from_indices(SCHEMA, np.array(rows))
    rng = np.random.default_rng(0)
    assert {prior.complete({"weather": "fog"}, rng)["time"] for _ in range(50)} == {"night"}
    times = [prior.complete({"weather": "clear"}, rng)["time"] for _ in range(2000)]
    assert 0.85 < times.count("day") / len(times) < 0.95
    weathers = [prior.complete({}, rng)["weather"] for _ in range(2000)]
    assert 0.25 < weathers.count("fog") / len(weathers) < 0.35


def test_unseen_combination_falls_back_to_marginals():
    prior = ConditionPrior.from_indices(SCHEMA, np.array([[0, 0], [1, 1]]))
    drawn = prior.complete({"weather": "snow"}, np.random.default_rng(0))
    assert drawn["weather"] == "snow" and drawn["time"] in ("day", "dusk")


def test_prior_round_trips_through_json_lists():
    prior = ConditionPrior.from_indices(SCHEMA, np.array([[0, 0], [0, 0], [3, 2]]))
    again = ConditionPrior.from_list(SCHEMA, prior.to_list())
    assert again.counts == {(0, 0): 2, (3, 2): 1}
