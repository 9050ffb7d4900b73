"""A trained backbone exported as model-zoo initial weights: names without the backbone / bottom-up prefixes, the
arrays unchanged, the source's description carried, and one-line errors for files that cannot be exported."""
import pickle

import numpy as np
import pytest
import torch

from wsis.checkpoint import ENV, KEY, read_description
from wsis.checkpoint.backbone import BackboneExportError, backbone_state, export_backbone
from wsis.checkpoint.description import FORMAT
from wsis.cli.export_backbone import main as export_main


def _state():
    g = torch.Generator().manual_seed(0)
    return {"backbone.stem.conv1.weight": torch.randn(4, 3, 3, 3, generator=g),
            "backbone.stem.conv1.norm.running_mean": torch.randn(4, generator=g),
            "backbone.stem.conv1.norm.num_batches_tracked": torch.tensor(7),
            "backbone.bottom_up.res2.0.conv1.weight": torch.randn(4, 4, 1, 1, generator=g),
            "backbone.fpn_lateral2.weight": torch.randn(2, 4, 1, 1, generator=g),
            "cam_head.weight": torch.randn(5, 4, generator=g),
            "roi_heads.box_predictor.bbox_pred.weight": torch.randn(8, 4, generator=g)}


def test_backbone_state_strips_prefixes_and_keeps_only_the_backbone():
    state = _state()
    out = backbone_state(state)
    assert sorted(out) == ["fpn_lateral2.weight", "res2.0.conv1.weight", "stem.conv1.norm.running_mean",
                           "stem.conv1.weight"]
    assert all(isinstance(v, np.ndarray) for v in out.values())
    np.testing.assert_array_equal(out["res2.0.conv1.weight"], state["backbone.bottom_up.res2.0.conv1.weight"].numpy())
    assert backbone_state({"roi_heads.x": torch.zeros(1)}) == {}


def test_export_round_trip_carries_the_description(tmp_path):
    desc = {"format": FORMAT, "format_version": 1, "meta_architecture": "CAMClassifier"}
    src, dst = tmp_path / "model_final.pth", tmp_path / "backbone.pkl"
    torch.save({"model": _state(), "iteration": 9, KEY: desc}, src)
    assert export_backbone(str(src), str(dst)) == 4
    with open(dst, "rb") as f:
        data = pickle.load(f)
    assert data["matching_heuristics"] is True and data["__author__"].endswith(str(src))
    np.testing.assert_array_equal(data["model"]["stem.conv1.weight"], _state()["backbone.stem.conv1.weight"].numpy())
    assert data[KEY] == desc and read_description(str(dst)) == desc  # a model trained from it can say so
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone.pkl", "model_final.pth"]  # no temporary left
    # a bare state dict (no "model" key) and a checkpoint without a description export too
    torch.save(_state(), src)
    export_backbone(str(src), str(dst))
    assert read_description(str(dst)) is None and len(pickle.load(open(dst, "rb"))["model"]) == 4


def test_export_errors_name_the_file(tmp_path, capsys):
    src = tmp_path / "heads.pth"
    torch.save({"model": {"roi_heads.x": torch.zeros(1)}}, src)
    with pytest.raises(BackboneExportError, match=r"heads\.pth: no backbone"):
        export_backbone(str(src), str(tmp_path / "b.pkl"))
    with pytest.raises(BackboneExportError, match=r"must end in \.pkl"):
        export_backbone(str(src), str(tmp_path / "b.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert export_main([str(tmp_path / "junk.pth"), str(tmp_path / "b.pkl")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "junk.pth: not a readable torch checkpoint" in err
    assert not (tmp_path / "b.pkl").exists()


def test_cli_reads_wsis_model_zoo_names(tmp_path, monkeypatch, capsys):
    zoo = tmp_path / "zoo" / "CAM" / "cam_R18_scratch_copy_paste" / "model_final.pth"
    zoo.parent.mkdir(parents=True)
    torch.save({"model": _state()}, zoo)
    monkeypatch.setenv(ENV, str(tmp_path / "zoo"))
    out = tmp_path / "backbone.pkl"
    assert export_main(["wsis://CAM/cam_R18_scratch_copy_paste/model_final.pth", str(out)]) == 0
    assert len(pickle.load(open(out, "rb"))["model"]) == 4
    assert export_main(["wsis://CAM/no_such_config/model_final.pth", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no_such_config" in err
