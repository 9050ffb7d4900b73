"""A config and a checkpoint written by wsis 0.1 (c83269b, before the one-package-per-method layout) load unchanged:
registered names, config keys and parameter names survived the move (tests/fixtures/*_c83269b*)."""
import os

import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

import wsis.modeling  # noqa: E402,F401  (registers every method's parts)
from wsis.config import add_wsis_config  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


@pytest.mark.parametrize("name, arch, head, prefix", [
    ("boxcaseg", "BoxCaseg", "MaskRCNNConvUpsampleHead", "heads."),
    ("bbtp", "GeneralizedRCNNWithMaskCRF", "BoxSupervisedMaskRCNNConvUpsampleHead", "roi_heads.mask_head."),
])
def test_config_and_checkpoint_of_wsis_0_1_load(name, arch, head, prefix):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(FIXTURES, f"{name}_config_c83269b.yaml"))  # every key still exists
    assert cfg.MODEL.META_ARCHITECTURE == arch and cfg.MODEL.ROI_MASK_HEAD.NAME == head
    torch.manual_seed(1)
    model = build_model(cfg)  # the registered names still resolve
    old = torch.load(os.path.join(FIXTURES, f"{name}_heads_c83269b.pth"), weights_only=True)["model"]
    incompatible = DetectionCheckpointer(model)._load_model({"model": dict(old)})
    assert not incompatible.unexpected_keys and not incompatible.incorrect_shapes
    assert not [k for k in incompatible.missing_keys if k.startswith(prefix)]  # every wsis parameter was found
    new = model.state_dict()
    assert old and all(torch.equal(new[k], v) for k, v in old.items())
