import pathlib
import re

import pytest
from fvcore.common.config import CfgNode as CN

import wsis
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


KEY_LINE = re.compile(r"^\s*[a-z]+\.[A-Z_]+ = ")


def _config_modules():
    """Every package's config.py (each owns its keys); wsis.core.config holds only the helpers."""
    root = pathlib.Path(wsis.__file__).parent
    return sorted(p for p in root.rglob("config.py") if p.parent.name != "core")


def test_every_key_is_documented():
    keys = 0
    modules = _config_modules()
    assert len(modules) >= 6, modules
    for path in modules:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if KEY_LINE.match(line):
                keys += 1
                j = i - 1
                while KEY_LINE.match(lines[j]):
                    j -= 1  # a group of keys under one comment
                assert lines[j].strip().startswith("#"), f"{path}: undocumented key: {line.strip()}"
    assert keys >= 40  # the parser sees the keys (a format change would otherwise pass silently)


def _all_keys(node, prefix=""):
    out = {}
    for k, v in node.items():
        if isinstance(v, CN):
            out.update(_all_keys(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def test_calling_twice_keeps_what_was_set():
    cfg = add_wsis_config(_base())
    cfg.WSIS.DATA.PSEUDO_MASKS = ("mine.json",)
    cfg.MODEL.BOXCASEG.ALPHA = 0.6
    cfg.MODEL.MASK_CRF.ENABLED = True
    before = _all_keys(cfg)
    add_wsis_config(cfg)
    assert _all_keys(cfg) == before
    assert cfg.WSIS.DATA.PSEUDO_MASKS == ("mine.json",) and cfg.MODEL.BOXCASEG.ALPHA == 0.6


@pytest.mark.parametrize("name", ["add_weak_data_config", "add_proxy_mask_head_config", "add_box_supervision_config",
                                  "add_mask_crf_config", "add_boxcaseg_config", "add_evaluation_config"])
def test_each_function_works_alone_on_an_empty_config(name):
    import wsis.config as d

    alone = getattr(d, name)(CN()) or None
    cfg = CN()
    getattr(d, name)(cfg)
    full = _all_keys(add_wsis_config(CN()))
    mine = _all_keys(cfg)
    assert mine and all(full[k] == v for k, v in mine.items())
    assert alone is None or isinstance(alone, CN)


def test_default_keeps_no_ground_truth_masks():
    assert add_wsis_config(_base()).WSIS.DATA.KEEP_GT_MASKS is False


def test_does_not_touch_detectron2_defaults():
    pytest.importorskip("detectron2")
    from detectron2.config import get_cfg

    cfg = add_wsis_config(get_cfg())
    assert "WSIS" in cfg
    assert type(cfg.WSIS) is type(cfg)
    fresh = get_cfg()
    assert "WSIS" not in fresh and "LOSS_NORMALIZATION" not in fresh.MODEL.ROI_MASK_HEAD
