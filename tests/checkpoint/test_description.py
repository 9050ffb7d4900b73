"""Checkpoint descriptions: every pseudo-label input with its provenance and hash, the initial weights' own
description, a round trip through torch.save / torch.load(weights_only=True), and the describe_checkpoint CLI."""
import hashlib
import json
import subprocess
import sys

import numpy as np
import torch
from fvcore.common.config import CfgNode

from wsis import __version__
from wsis.checkpoint import KEY, format_description, read_description, training_description, weak_label_difference
from wsis.cli.describe_checkpoint import main as describe
from wsis.config import add_wsis_config
from wsis.core.masks import encode_mask
from wsis.data.pseudo_store import PseudoMaskWriter, make_provenance

from conftest import REPO


def _cfg(**data):
    cfg = CfgNode({"MODEL": {"META_ARCHITECTURE": "GeneralizedRCNN", "WEIGHTS": ""},
                   "DATASETS": {"TRAIN": ("coco_tiny_train_box",), "TEST": ("coco_tiny_val",)}})
    add_wsis_config(cfg)
    for k, v in data.items():
        cfg.WSIS.DATA[k] = v
    return cfg


def _store(path, method="grabcut", iters=5, overwrite=False):
    record = {"image_id": 7, "height": 4, "width": 5, "ignore": None,
              "instances": [{"annotation_id": 1, "category_id": 0, "bbox": [0.0, 0.0, 2.0, 2.0],
                             "segmentation": encode_mask(np.ones((4, 5), bool)), "valid": True, "ignore": None,
                             "score": 1.0}]}
    with PseudoMaskWriter(str(path), make_provenance(method, {"iters": iters}, source="ann.json",
                                                     source_hash="abc"), overwrite=overwrite) as w:
        w.add(record)
    return path


def test_pseudo_mask_stores_are_described_by_their_provenance_and_bytes(tmp_path):
    store = _store(tmp_path / "pseudo_masks.json")
    desc = training_description(_cfg(PSEUDO_MASKS=(str(store),)))
    (entry,) = desc["weak_labels"]
    assert entry["kind"] == "pseudo_masks" and entry["path"] == str(store)
    assert entry["sha256"] == hashlib.sha256(store.read_bytes()).hexdigest()
    assert entry["provenance"]["method"] == "grabcut" and entry["provenance"]["params"] == {"iters": 5}
    assert entry["provenance"]["source_hash"] == "abc"
    assert desc["wsis_version"] == __version__ and desc["meta_architecture"] == "GeneralizedRCNN"
    assert desc["datasets"]["train"] == [{"name": "coco_tiny_train_box"}]
    assert CfgNode.load_cfg(desc["config"]).WSIS.DATA.PSEUDO_MASKS == [str(store)]
    assert desc["init_weights"] is None


def test_semantic_label_folders_give_params_json_or_the_store_beside_them(tmp_path):
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "1.png").write_bytes(b"")
    (labels / "params.json").write_text(json.dumps({"labels": {"method": "irnet"}}))
    irnet = tmp_path / "irnet_out"
    _store(irnet / "pseudo_masks.json", method="irnet")
    (irnet / "semantic_irnet").mkdir()
    desc = training_description(_cfg(SEMANTIC_LABELS=(str(labels), str(irnet / "semantic_irnet"),
                                                      str(tmp_path / "gone"))))
    a, b, c = desc["weak_labels"]
    assert a["params"] == {"labels": {"method": "irnet"}} and a["num_maps"] == 1
    assert b["provenance"]["method"] == "irnet" and b["num_maps"] == 0 and "params" not in b
    assert c["error"] == "missing"
    text = format_description(desc)
    assert "semantic_labels: " + str(labels) in text and "method irnet" in text and "[missing" in text


def test_round_trip_and_nested_initial_weights(tmp_path):
    store = _store(tmp_path / "pseudo_masks.json")
    first = training_description(_cfg(PSEUDO_MASKS=(str(store),)))
    ckpt = tmp_path / "model_final.pth"
    torch.save({"model": {"w": torch.ones(2)}, "iteration": 3, KEY: first}, ckpt)
    assert read_description(ckpt) == first  # torch.load(weights_only=True): plain values only
    cfg = _cfg()
    cfg.MODEL.WEIGHTS = str(ckpt)
    second = training_description(cfg)
    assert second["init_weights"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert second["init_weights"]["description"] == first
    text = format_description(second, with_config=True)
    assert f"initial weights: {ckpt}" in text and "    pseudo_masks: " + str(store) in text and "config:" in text


def test_checkpoints_without_a_description_read_as_none(tmp_path):
    torch.save({"model": {"w": torch.ones(2)}}, tmp_path / "old.pth")
    torch.save({"model": {}, KEY: {"something": "else"}}, tmp_path / "other.pth")
    (tmp_path / "c2.pkl").write_bytes(b"not read")
    assert read_description(tmp_path / "old.pth") is None and read_description(tmp_path / "other.pth") is None
    assert read_description(tmp_path / "c2.pkl") is None
    old = f"{REPO}/tests/fixtures/cam_tiny_d933622/model_final.pth"  # written by d933622's trainer
    assert read_description(old) is None


def test_weak_label_difference_names_the_changed_inputs(tmp_path):
    a = _store(tmp_path / "a.json")
    old = training_description(_cfg(PSEUDO_MASKS=(str(a),)))
    assert weak_label_difference(old, old) == []
    _store(a, iters=6, overwrite=True)  # same path, other labels
    new = training_description(_cfg(PSEUDO_MASKS=(str(a),)))
    assert weak_label_difference(old, new) == [str(a)]


def test_describe_checkpoint_cli(tmp_path, capsys):
    store = _store(tmp_path / "pseudo_masks.json")
    desc = training_description(_cfg(PSEUDO_MASKS=(str(store),)))
    torch.save({"model": {}, KEY: desc}, tmp_path / "m.pth")
    assert describe([str(tmp_path / "m.pth")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wsis {__version__}, GeneralizedRCNN") and "method grabcut" in out
    assert describe([str(tmp_path / "m.pth"), "--json"]) == 0 and json.loads(capsys.readouterr().out) == desc
    torch.save({"model": {}}, tmp_path / "old.pth")
    assert describe([str(tmp_path / "old.pth")]) == 1 and "no wsis description" in capsys.readouterr().out
    (tmp_path / "junk.pth").write_bytes(b"junk")
    for bad in (str(tmp_path / "missing.pth"), str(tmp_path / "junk.pth"), "wsis://BBTP/nope/model_final.pth"):
        assert describe([bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"describe_checkpoint: {bad}: ") and err.count("\n") == 1, err


def test_the_tool_script_runs(tmp_path):
    torch.save({"model": {}, KEY: training_description(_cfg())}, tmp_path / "m.pth")
    proc = subprocess.run([sys.executable, f"{REPO}/tools/describe_checkpoint.py", str(tmp_path / "m.pth")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "weak labels: none" in proc.stdout, proc.stderr
