"""Every shipped config merges into a wsis config and builds its model (CPU, no weights loaded)."""
import glob
import os

import pytest

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

import wsis.modeling  # noqa: E402,F401  (registers everything)
from wsis.config import add_wsis_config  # noqa: E402

from conftest import REPO  # noqa: E402

CONFIGS = sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
                 + glob.glob(os.path.join(REPO, "projects", "*", "configs", "*.yaml")))


@pytest.mark.parametrize("path", CONFIGS, ids=[os.path.relpath(p, REPO) for p in CONFIGS])
def test_config_builds_its_model(path):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(path)
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    assert type(model).__name__ == cfg.MODEL.META_ARCHITECTURE


def test_boxcaseg_paper_configs_use_the_official_heads():
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(os.path.join(REPO, "projects", "BoxCaseg", "configs", "boxcaseg_R_101_FPN_voc_aug.yaml"))
    b = cfg.MODEL.BOXCASEG
    assert (b.FUSE_DIM, b.HEAD_LAYERS, b.TRANSFER_BIAS, b.MIX) == (0, 2, "affine", "logit")
