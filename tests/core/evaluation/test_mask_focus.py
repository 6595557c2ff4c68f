"""The mask rows' focus: class-name prefixes, comma-separated, never the background."""

from types import SimpleNamespace

import pytest

from synthscape.core.evaluation.layout_suite import focus_ids
from synthscape.core.evaluation.suite import EvaluationSettings
from synthscape.domains.driving.schema import LABELS as DRIVING
from synthscape.domains.lung_ct.schema import LABELS as LUNG


def run_of(labels, focus):
    return SimpleNamespace(draw=SimpleNamespace(sampler=SimpleNamespace(label_map=labels)),
                           settings=EvaluationSettings(mask_focus=focus))


@pytest.mark.parametrize("labels, focus, names", [
    (LUNG, "nodule_", ["nodule_solid", "nodule_ground_glass", "nodule_part_solid"]),
    (DRIVING, "pedestrian,cyclist,debris", ["pedestrian", "cyclist", "debris"]),
    (DRIVING, "traffic_, car", ["traffic_light", "traffic_sign", "car"]),
    (DRIVING, "", list(DRIVING.classes[1:])),
])
def test_focus_ids_name_the_classes_the_rows_score(labels, focus, names):
    assert [labels.classes[i] for i in focus_ids(run_of(labels, focus))] == names
