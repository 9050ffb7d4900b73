import pytest
from fvcore.common.config import CfgNode as CN

from wsis.config import add_wsis_config


def _base():
    cfg = CN()
    cfg.MODEL = CN()
    cfg.MODEL.ROI_MASK_HEAD = CN()
    return cfg


def test_adds_documented_keys_without_detectron2():
    cfg = add_wsis_config(_base())
    assert cfg.WSIS.DATA.PSEUDO_MASKS == ()
    assert cfg.WSIS.EVAL.APR_IOU_THRESHOLDS == (0.25, 0.5, 0.7, 0.75)
    assert cfg.MODEL.ROI_MASK_HEAD.LOSS_NORMALIZATION == "pixels"


def test_yaml_round_trip(tmp_path):
    cfg = add_wsis_config(_base())
    cfg.WSIS.DATA.PSEUDO_MASKS = ("a.json",)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.dump())
    other = add_wsis_config(_base())
    other.merge_from_file(str(path))
    assert other.WSIS.DATA.PSEUDO_MASKS == ("a.json",)


def test_every_key_is_documented():
    import inspect

    import wsis.config.defaults as d

    src = inspect.getsource(d)
    lines = src.splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if (stripped.startswith("cfg.") or stripped.startswith(("bs.", "crf.", "bc.", "bd."))) and "_node(cfg)" not in line:
            j = i - 1
            while lines[j].strip().startswith(("bs.", "crf.", "bc.", "bd.")) and not lines[j].strip().startswith("#"):
                j -= 1  # a group of keys under one comment
            assert lines[j].strip().startswith("#"), f"undocumented key: {stripped}"


def test_does_not_touch_detectron2_defaults():
    pytest.importorskip("detectron2")
    from detectron2.config import get_cfg

    cfg = add_wsis_config(get_cfg())
    assert "WSIS" in cfg
    assert type(cfg.WSIS) is type(cfg)
    fresh = get_cfg()
    assert "WSIS" not in fresh and "LOSS_NORMALIZATION" not in fresh.MODEL.ROI_MASK_HEAD
