"""DICOM in and out for lung CT: one place to import both directions from (numpy, nibabel, pydicom only).

The reader lives in ``dicom_read.py``, the writer in ``dicom_write.py``; see their docstrings for the
geometry and for what the written headers hold.
"""

from synthscape.domains.lung_ct.dicom_read import read_dicom_series
from synthscape.domains.lung_ct.dicom_write import EXTRA_KEYS, SYNTHESIZING_EQUIPMENT, write_dicom_series

__all__ = ["EXTRA_KEYS", "SYNTHESIZING_EQUIPMENT", "read_dicom_series", "write_dicom_series"]
