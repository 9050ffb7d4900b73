"""A pseudo-mask store written by wsis 0.1 (c83269b) reads unchanged and re-serialises to the same bytes."""
import os

import numpy as np

from wsis.core.masks import decode_mask
from wsis.data.pseudo_store import PseudoMaskWriter, load_pseudo_masks

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                       "pseudo_masks_c83269b.json")


def test_store_of_wsis_0_1_loads_and_round_trips(tmp_path):
    provenance, records = load_pseudo_masks(FIXTURE)
    assert provenance["method"] == "boxfill" and provenance["wsis_version"] == "0.1.0"
    inst = records[7]["instances"]
    assert decode_mask(inst[0]["segmentation"]).sum() == 12 and inst[0]["valid"] and not inst[1]["valid"]
    assert decode_mask(records[7]["ignore"])[0, 0] and np.count_nonzero(decode_mask(inst[1]["ignore"])) == 1
    with PseudoMaskWriter(str(tmp_path / "again.json"), provenance) as w:
        w.add(records[7])
    assert (tmp_path / "again.json").read_bytes() == open(FIXTURE, "rb").read()
