"""Label-map schemas and mapping files: ids checked, foreign values mapped or refused by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.core.schema.labelmap import LabelMapSchema, apply_mapping, read_mapping

LABELS = LabelMapSchema(("background", "lung", "nodule_solid", "nodule_ground_glass"))


def test_ids_follow_the_order_and_prefixes_select_classes():
    assert LABELS.id("lung") == 1 and LABELS.ids("nodule_") == [2, 3]
    assert LABELS.described()[2] == "2 nodule_solid"
    assert LabelMapSchema.from_list(LABELS.to_list()) == LABELS


@pytest.mark.parametrize("classes, message", [
    (("background",), "2 to 255 class names"),
    (("background", "Lung", "lung"), "must differ"),
    (("background", "../x"), "label-map class"),
])
def test_bad_schemas_are_refused(classes, message):
    with pytest.raises(SynthscapeError, match=message):
        LabelMapSchema(classes)


def test_a_label_map_outside_the_classes_is_one_line():
    assert LABELS.check(np.array([[0, 3]]), "m").dtype == np.uint8
    with pytest.raises(SynthscapeError, match="m holds values 0..4; the label map's classes are 0..3"):
        LABELS.check(np.array([0, 4]), "m")
    with pytest.raises(SynthscapeError, match="whole class ids"):
        LABELS.check(np.array([0.5]), "m")


def test_a_mapping_file_turns_another_tools_values_into_ours(tmp_path):
    path = tmp_path / "label_mapping.json"
    path.write_text(json.dumps({"0": "background", "1": "lung", "2": "lung", "7": "nodule_solid"}))
    mapping = read_mapping(path, LABELS)
    mapped = apply_mapping(np.array([[0, 1], [2, 7]]), mapping, LABELS, "mask.nii.gz")
    assert mapped.tolist() == [[0, 1], [1, 2]] and mapped.dtype == np.uint8
    with pytest.raises(SynthscapeError, match="mask.nii.gz holds value\\(s\\) 5 that the label mapping does not name"):
        apply_mapping(np.array([0, 5]), mapping, LABELS, "mask.nii.gz")


@pytest.mark.parametrize("content, message", [
    ("{", "not a readable JSON label mapping"),
    ('{"x": "lung"}', "is not a label value"),
    ('{"1": "liver"}', "unknown label-map class 'liver'"),
    ("[]", "a label mapping is a JSON object"),
])
def test_a_bad_mapping_file_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "label_mapping.json"
    path.write_text(content)
    with pytest.raises(SynthscapeError, match=message):
        read_mapping(path, LABELS)
