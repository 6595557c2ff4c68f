"""The Domain contract: the meta a data set records is declared, and a key it does not declare is refused."""

import numpy as np
import pytest

from synthscape.core.errors import SynthscapeError
from synthscape.domains import get_domain
from synthscape.domains.base import read_meta, register
from synthscape.domains.lung_ct.schema import CTMeta

CT = [{"nodule": "absent", "size": "none", "kind": "none"}]


def test_read_meta_takes_declared_keys_and_fills_defaults():
    meta = read_meta(CTMeta, {"spacing": [1.0, 2.0, 3.0]}, "lung-ct")
    assert meta.spacing == [1.0, 2.0, 3.0] and meta.hu_window == (-1024.0, 600.0) and meta.orientation == "RAS"
    assert read_meta(CTMeta, None, "lung-ct") == CTMeta()


@pytest.mark.parametrize("name, images, conditions, misspelt", [
    ("lung-ct", np.zeros((1, 1, 8, 8, 8), np.float32), CT, "spcing"),
    ("driving", np.zeros((1, 3, 8, 8), np.float32), [{"weather": "fog", "time": "day", "scenario": "debris"}], "sizes"),
])
def test_write_refuses_a_misspelt_meta_key_before_writing(tmp_path, name, images, conditions, misspelt):
    domain = get_domain(name)
    with pytest.raises(SynthscapeError, match=rf"{name} meta has unknown key\(s\) '{misspelt}'; valid keys: .*size"):
        domain.write(images, conditions, tmp_path / "out", meta={misspelt: [2.0, 2.0, 2.0]})
    assert not (tmp_path / "out").exists()


def test_the_ct_writer_uses_the_meta_spacing_and_window(tmp_path):
    import nibabel as nib

    files = get_domain("lung-ct").write(np.zeros((1, 1, 8, 8, 8), np.float32), CT, tmp_path,
                                        meta={"spacing": [0.5, 0.5, 1.25], "hu_window": [-1000, 0]})
    volume = nib.load([f for f in files if f.name.endswith(".nii.gz")][0])
    assert volume.header.get_zooms() == pytest.approx((0.5, 0.5, 1.25))
    assert np.all(np.asarray(volume.dataobj) == -500)  # 0 on the [-1, 1] scale is the window's middle


def test_register_refuses_a_domain_without_its_meta_type():
    class NoMeta:
        name, schema, spatial_dims = "no-meta", None, 2

        def simulate(self): ...
        def dataset(self): ...
        def write(self): ...

    with pytest.raises(SynthscapeError, match="lacks meta_type"):
        register(NoMeta())
