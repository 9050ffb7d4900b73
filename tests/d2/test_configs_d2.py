"""Every shipped config loads through ``wsis.model_zoo.get_config`` and builds its model (CPU, no weights loaded)."""
import glob
import os

import pytest

pytest.importorskip("detectron2")

from detectron2.modeling import build_model  # noqa: E402

from wsis import model_zoo  # noqa: E402

from conftest import REPO  # noqa: E402

CONFIGS = model_zoo.list_configs()


def test_the_model_zoo_lists_every_config_file():
    files = (glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
             + glob.glob(os.path.join(REPO, "projects", "*", "configs", "*.yaml")))
    assert sorted(os.path.realpath(model_zoo.get_config_file(n)) for n in CONFIGS) == sorted(
        os.path.realpath(f) for f in files)


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds_its_model(name):
    cfg = model_zoo.get_config(name)
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    assert type(model).__name__ == cfg.MODEL.META_ARCHITECTURE


def test_boxcaseg_paper_configs_use_the_official_heads():
    b = model_zoo.get_config("BoxCaseg/boxcaseg_R_101_FPN_voc_aug.yaml").MODEL.BOXCASEG
    assert (b.FUSE_DIM, b.HEAD_LAYERS, b.TRANSFER_BIAS, b.MIX) == (0, 2, "affine", "logit")
