"""Tests of the pseudo-mask store (wsis.data.pseudo_store); detectron2-free."""
import copy
import hashlib
import json
import logging
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest

from wsis.data.pseudo_store import writer as store_writer
from wsis.data.pseudo_store import (
    PseudoMaskError,
    PseudoMaskWriter,
    attach_pseudo_masks,
    decode_mask,
    encode_mask,
    load_pseudo_masks,
    make_provenance,
    source_hash_of_dicts,
    source_hash_of_file,
)

PROVENANCE = {"method": "box_fill", "params": {"shrink": 0.0}, "wsis_version": "0.1.0",
              "source": "toy_train", "source_hash": "abc"}
IMAGE_IDS = [3, 5, 8, 13, 21, 34, 55, 89]


def make_dataset():
    """Toy Detectron2 dataset dicts: image i is (10 + i % 7) x (12 + i % 5), with two boxes (ids 100i, 100i + 1)."""
    dicts = []
    for i in IMAGE_IDS:
        h, w = 10 + i % 7, 12 + i % 5
        anns = [{"id": 100 * i + k, "bbox": [k, k, 4.0, 5.0], "bbox_mode": 1, "category_id": k, "iscrowd": 0}
                for k in range(2)]
        dicts.append({"file_name": f"{i}.jpg", "image_id": i, "height": h, "width": w, "annotations": anns})
    return dicts


def make_record(image_id):
    """A deterministic pseudo-mask record for make_dataset()'s image: a random mask per box, the second invalid."""
    d = {x["image_id"]: x for x in make_dataset()}[image_id]
    rng = np.random.RandomState(image_id)
    instances = []
    for k, ann in enumerate(d["annotations"]):
        mask = rng.rand(d["height"], d["width"]) > 0.5
        instances.append({"annotation_id": ann["id"], "category_id": ann["category_id"], "bbox": ann["bbox"],
                          "segmentation": encode_mask(mask), "valid": k == 0, "ignore": None, "score": 0.5 + k / 4})
    return {"image_id": image_id, "height": d["height"], "width": d["width"], "ignore": None, "instances": instances}


def write(path, ids, **kwargs):
    with PseudoMaskWriter(path, PROVENANCE, **kwargs) as writer:
        for i in ids:
            writer.add(make_record(i))
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def reference(tmp_path):
    """Bytes of an uninterrupted, in-order run."""
    return write(str(tmp_path / "reference.json"), IMAGE_IDS)


# ------------------------------------------------------------------------------------------------------------- masks
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (3, 7), (31, 17)])
@pytest.mark.parametrize("kind", ["empty", "full", "random"])
def test_encode_decode_round_trip(shape, kind):
    mask = {"empty": np.zeros(shape, bool), "full": np.ones(shape, bool),
            "random": np.random.RandomState(0).rand(*shape) > 0.5}[kind]
    rle = encode_mask(mask)
    assert rle["size"] == list(shape) and isinstance(rle["counts"], str)
    json.dumps(rle)  # plain JSON types
    np.testing.assert_array_equal(decode_mask(rle), mask)
    np.testing.assert_array_equal(decode_mask(dict(rle, counts=rle["counts"].encode())), mask)  # bytes counts
    assert decode_mask(rle).dtype == bool


def test_encode_nonzero_is_foreground_and_uncompressed_rle_decodes():
    np.testing.assert_array_equal(decode_mask(encode_mask(np.array([[0, 2], [0.5, 0]]))), [[0, 1], [1, 0]])
    # COCO's uncompressed RLE runs column-major: 1 zero, 2 ones, 3 zeros
    np.testing.assert_array_equal(decode_mask({"size": [2, 3], "counts": [1, 2, 3]}), [[0, 1, 0], [1, 0, 0]])
    with pytest.raises(ValueError):
        encode_mask(np.zeros((2, 2, 2)))


def test_source_hashes(tmp_path):
    path = tmp_path / "ann.json"
    path.write_bytes(b'{"images": []}')
    assert source_hash_of_file(str(path)) == hashlib.sha256(b'{"images": []}').hexdigest()

    dicts = make_dataset()
    h = source_hash_of_dicts(dicts)
    assert source_hash_of_dicts(list(reversed(dicts))) == h  # image order does not matter
    for change in ("bbox", "height", "category_id"):
        changed = copy.deepcopy(dicts)
        if change == "height":
            changed[0]["height"] += 1
        else:
            changed[0]["annotations"][0][change] = [0, 0, 1, 1] if change == "bbox" else 7
        assert source_hash_of_dicts(changed) != h, change


def test_make_provenance():
    from wsis import __version__

    prov = make_provenance("grabcut", {"iters": 5}, source="coco_2017_train", source_hash="f00", round=2)
    assert prov == {"method": "grabcut", "params": {"iters": 5}, "wsis_version": __version__,
                    "source": "coco_2017_train", "source_hash": "f00", "round": 2}


# ------------------------------------------------------------------------------------------------------------ writer
def test_written_file_is_the_documented_format(tmp_path):
    path = str(tmp_path / "pm.json")
    mask = np.array([[0, 1, 0], [1, 0, 0]], bool)
    with PseudoMaskWriter(path, PROVENANCE) as writer:
        writer.add({"image_id": 7, "height": 2, "width": 3, "instances": [
            {"annotation_id": 70, "category_id": 1, "bbox": [0, 0, 2, 2], "segmentation": encode_mask(mask)}]})
    data = json.loads(open(path).read())
    assert data == {
        "format": "wsis.pseudo_masks", "format_version": 1, "provenance": PROVENANCE,
        "images": [{"image_id": 7, "height": 2, "width": 3, "ignore": None, "instances": [
            {"annotation_id": 70, "category_id": 1, "bbox": [0.0, 0.0, 2.0, 2.0],
             "segmentation": {"size": [2, 3], "counts": encode_mask(mask)["counts"]},
             "valid": True, "ignore": None, "score": 1.0}]}]}
    assert sorted(os.listdir(tmp_path)) == ["pm.json"]  # journal and temporary file are gone


def test_out_of_order_adds_give_identical_bytes(tmp_path, reference):
    ids = list(IMAGE_IDS)
    random.Random(0).shuffle(ids)
    assert ids != IMAGE_IDS
    assert write(str(tmp_path / "shuffled.json"), ids) == reference
    images = json.loads(reference)["images"]
    assert [im["image_id"] for im in images] == IMAGE_IDS


def test_simulated_kill_then_resume_gives_identical_bytes(tmp_path, reference):
    path = str(tmp_path / "pm.json")
    writer = PseudoMaskWriter(path, PROVENANCE)
    for i in [8, 3, 21]:
        writer.add(make_record(i))
    writer.close()  # killed: no finalize
    assert not os.path.exists(path)
    with open(path + ".partial.jsonl", "ab") as f:  # the image in flight when the kill came
        f.write(json.dumps(make_record(55)).encode()[:40])

    with PseudoMaskWriter(path, PROVENANCE) as writer:
        assert writer.done_ids() == {3, 8, 21}
        for i in IMAGE_IDS:
            if i not in writer.done_ids():
                writer.add(make_record(i))
    assert open(path, "rb").read() == reference


def test_kill_while_writing_the_journal_header_starts_anew(tmp_path, reference):
    path = str(tmp_path / "pm.json")
    with open(path + ".partial.jsonl", "wb") as f:
        f.write(b'{"format":"wsis.pseudo_m')
    with PseudoMaskWriter(path, PROVENANCE) as writer:
        assert writer.done_ids() == set()
        for i in IMAGE_IDS:
            writer.add(make_record(i))
    assert open(path, "rb").read() == reference


def test_exception_in_with_block_keeps_the_journal(tmp_path, reference):
    path = str(tmp_path / "pm.json")
    with pytest.raises(RuntimeError):
        with PseudoMaskWriter(path, PROVENANCE) as writer:
            writer.add(make_record(3))
            raise RuntimeError("generator crashed")
    assert not os.path.exists(path) and os.path.exists(path + ".partial.jsonl")
    assert PseudoMaskWriter(path, PROVENANCE).done_ids() == {3}


def test_resume_with_different_provenance_is_refused(tmp_path):
    path = str(tmp_path / "pm.json")
    writer = PseudoMaskWriter(path, PROVENANCE)
    writer.add(make_record(3))
    writer.close()
    other = dict(PROVENANCE, params={"shrink": 0.1})
    with pytest.raises(PseudoMaskError, match=r"different provenance.*params\.shrink: 0\.0 -> 0\.1"):
        PseudoMaskWriter(path, other)
    writer = PseudoMaskWriter(path, other, overwrite=True)
    assert writer.done_ids() == set()
    writer.finalize()
    assert json.load(open(path))["provenance"]["params"] == {"shrink": 0.1}


def test_finalized_output_is_not_silently_regenerated(tmp_path, reference):
    path = str(tmp_path / "pm.json")
    write(path, IMAGE_IDS)
    with pytest.raises(PseudoMaskError, match="already finalized"):
        PseudoMaskWriter(path, PROVENANCE)
    assert write(path, IMAGE_IDS, overwrite=True) == reference


def test_duplicate_add_is_an_error_also_across_a_resume(tmp_path):
    path = str(tmp_path / "pm.json")
    writer = PseudoMaskWriter(path, PROVENANCE)
    writer.add(make_record(3))
    with pytest.raises(PseudoMaskError, match="image_id=3 was already added"):
        writer.add(make_record(3))
    writer.close()
    writer = PseudoMaskWriter(path, PROVENANCE)
    with pytest.raises(PseudoMaskError, match="image_id=3 was already added"):
        writer.add(make_record(3))
    writer.finalize()
    with pytest.raises(PseudoMaskError, match="already finalized"):
        writer.add(make_record(5))


@pytest.mark.parametrize("corrupt, message", [
    (lambda r: r["instances"][1].update(segmentation=encode_mask(np.zeros((4, 4), bool))),
     r"image_id=3, annotation_id=301: segmentation has size \[4, 4\] but the image is"),
    (lambda r: r.update(ignore=encode_mask(np.zeros((13, 13), bool))), r"image_id=3: image ignore has size"),
    (lambda r: r.update(image_id="3"), r"image_id must be an int, got '3'"),
    (lambda r: r["instances"][0].update(valid="yes"), r"annotation_id=300: valid must be a bool"),
    (lambda r: r["instances"][0].update(score=float("nan")), r"score must be finite"),
    (lambda r: r["instances"][0].update(bbox=[1, 2, 3]), r"bbox must be \[x, y, w, h\]"),
    (lambda r: r["instances"][0].update(segmentaion=None), r"unknown instance keys \['segmentaion'\]"),
    (lambda r: r["instances"][1].update(annotation_id=300), r"annotation_id \[300\] appear more than once"),
    (lambda r: r.pop("height"), r"image_id=3: image record has no 'height'"),
])
def test_add_validates_the_record(tmp_path, corrupt, message):
    record = make_record(3)
    corrupt(record)
    writer = PseudoMaskWriter(str(tmp_path / "pm.json"), PROVENANCE)
    with pytest.raises(PseudoMaskError, match=message):
        writer.add(record)
    assert writer.done_ids() == set()


def test_add_accepts_numpy_scalars_and_bytes_counts(tmp_path):
    record = make_record(3)
    record["image_id"] = np.int64(3)
    inst = record["instances"][0]
    counts = inst["segmentation"]["counts"].encode()
    inst.update(category_id=np.int32(0), bbox=np.array([0, 0, 4, 5], np.float32), valid=np.bool_(True),
                score=np.float32(0.5), segmentation=dict(inst["segmentation"], counts=counts))
    path = str(tmp_path / "pm.json")
    with PseudoMaskWriter(path, PROVENANCE) as writer:
        writer.add(record)
    _, records = load_pseudo_masks(path)
    assert records[3]["instances"][0]["segmentation"] == make_record(3)["instances"][0]["segmentation"]


@pytest.mark.skipif(store_writer.fcntl is None, reason="needs POSIX file locks")
def test_second_writer_on_the_same_output_is_refused(tmp_path):
    path = str(tmp_path / "pm.json")
    writer = PseudoMaskWriter(path, PROVENANCE)
    with pytest.raises(PseudoMaskError, match="locked by another PseudoMaskWriter"):
        PseudoMaskWriter(path, PROVENANCE)
    writer.close()


KILLED_WRITER = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("pseudo_store_test", sys.argv[1])
test = importlib.util.module_from_spec(spec)
spec.loader.exec_module(test)
from wsis.data.pseudo_store import PseudoMaskWriter
writer = PseudoMaskWriter(sys.argv[2], test.PROVENANCE)
for i in test.IMAGE_IDS:
    writer.add(test.make_record(i))
    print(i, flush=True)
    time.sleep(0.2)
writer.finalize()
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_resume_after_a_real_sigkill(tmp_path, reference):
    path = str(tmp_path / "pm.json")
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, os.path.abspath(__file__), path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        reported = [int(proc.stdout.readline()) for _ in range(3)]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert reported == IMAGE_IDS[:3]
    assert not os.path.exists(path)

    with PseudoMaskWriter(path, PROVENANCE) as writer:
        done = writer.done_ids()
        assert done == set(IMAGE_IDS[:len(done)]) and len(done) >= 3  # a prefix: at most one more than reported
        for i in IMAGE_IDS:
            if i not in done:
                writer.add(make_record(i))
    assert open(path, "rb").read() == reference


# ----------------------------------------------------------------------------------------------------------- loading
def test_load_round_trip(tmp_path, reference):
    path = str(tmp_path / "reference.json")
    provenance, records = load_pseudo_masks(path, make_dataset(), require_all=True)
    assert provenance == PROVENANCE
    assert sorted(records) == IMAGE_IDS
    assert records[5] == json.loads(json.dumps(make_record(5)))
    expected = np.random.RandomState(5).rand(10 + 5, 12 + 0) > 0.5
    np.testing.assert_array_equal(decode_mask(records[5]["instances"][0]["segmentation"]), expected)


def _assert_load_error(path, dataset, pattern, **kwargs):
    with pytest.raises(PseudoMaskError) as info:
        load_pseudo_masks(path, dataset, **kwargs)
    assert path in str(info.value)
    assert info.match(pattern)


def test_load_checks_against_the_dataset(tmp_path, reference):
    path = str(tmp_path / "reference.json")

    dataset = [d for d in make_dataset() if d["image_id"] != 13]
    _assert_load_error(path, dataset, r"image_id=13 is not in the dataset")

    dataset = make_dataset()
    dataset[2]["height"] += 1
    _assert_load_error(path, dataset, r"image_id=8: height is 11 in the pseudo masks but 12 in the dataset")

    dataset = make_dataset()
    dataset[1]["annotations"][1]["id"] = 999
    _assert_load_error(path, dataset, r"image_id=5, annotation_id=501: no annotation with this id")

    dataset = make_dataset()
    dataset[1]["annotations"][0]["category_id"] = 4
    _assert_load_error(path, dataset, r"image_id=5, annotation_id=500: category_id is 0 in the pseudo masks but 4")

    dataset = make_dataset()
    for d in dataset:
        for a in d["annotations"]:
            del a["id"]
    _assert_load_error(path, dataset, r"extra_annotation_keys=\['id'\]")


def test_load_require_all(tmp_path):
    path = str(tmp_path / "pm.json")
    write(path, IMAGE_IDS[:5])
    load_pseudo_masks(path, make_dataset())  # a subset is fine by default
    _assert_load_error(path, make_dataset(), r"3 of 8 dataset images have no pseudo masks \(image_id=\[34, 55, 89\]",
                       require_all=True)


def test_load_rejects_malformed_files(tmp_path, reference):
    path = str(tmp_path / "reference.json")
    data = json.loads(reference)

    bad = str(tmp_path / "version.json")
    open(bad, "w").write(json.dumps(dict(data, format_version=2)))
    _assert_load_error(bad, None, r"format_version 2 is not supported")

    bad = str(tmp_path / "format.json")
    open(bad, "w").write(json.dumps(dict(data, format="something")))
    _assert_load_error(bad, None, r"not a wsis pseudo-mask file")

    bad = str(tmp_path / "truncated.json")
    open(bad, "wb").write(reference[: len(reference) // 2])
    _assert_load_error(bad, None, r"not valid JSON")

    bad = str(tmp_path / "size.json")
    data["images"][0]["instances"][0]["segmentation"]["size"] = [1, 1]
    open(bad, "w").write(json.dumps(data))
    _assert_load_error(bad, None, r"image_id=3, annotation_id=300: segmentation has size \[1, 1\]")

    bad = str(tmp_path / "duplicate.json")
    data = json.loads(reference)
    data["images"].append(data["images"][0])
    open(bad, "w").write(json.dumps(data))
    _assert_load_error(bad, None, r"image_id=3 appears more than once")


def test_load_source_hash_check(tmp_path, reference, caplog):
    path = str(tmp_path / "reference.json")
    with caplog.at_level(logging.WARNING, logger="wsis.data.pseudo_store"):
        load_pseudo_masks(path, expected_source_hash="abc")
        assert not caplog.records
        load_pseudo_masks(path, expected_source_hash="def")
    assert "expected def" in caplog.text and path in caplog.text
    _assert_load_error(path, None, r"hash abc, expected def", expected_source_hash="def", strict_source=True)


# --------------------------------------------------------------------------------------------------------- attaching
def _rect(h, w, y0, y1, x0, x1):
    mask = np.zeros((h, w), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_attach_sets_masks_flags_and_per_instance_ignore(caplog):
    dataset = make_dataset()[:3]  # images 3 (13x15), 5 (15x12), 8 (11x15)
    dataset[2]["annotations"][0]["segmentation"] = [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]]  # a real polygon
    before = copy.deepcopy(dataset)
    m3 = encode_mask(_rect(13, 15, 0, 5, 0, 5))
    own_300, own_301 = encode_mask(_rect(13, 15, 10, 13, 0, 3)), encode_mask(_rect(13, 15, 12, 13, 0, 15))
    records = {
        3: {"image_id": 3, "height": 13, "width": 15, "ignore": encode_mask(_rect(13, 15, 0, 2, 0, 15)),
            "instances": [
                {"annotation_id": 300, "category_id": 0, "bbox": [0.0, 0.0, 5.0, 5.0], "segmentation": m3,
                 "valid": True, "ignore": own_300, "score": 1.0},
                {"annotation_id": 301, "category_id": 1, "bbox": [1.0, 1.0, 4.0, 5.0], "segmentation": m3,
                 "valid": False, "ignore": own_301, "score": 1.0},
                {"annotation_id": None, "category_id": 1, "bbox": [9.0, 9.0, 2.0, 2.0],
                 "segmentation": encode_mask(_rect(13, 15, 9, 11, 9, 11)), "valid": True, "ignore": None,
                 "score": 0.3}]},
        5: {"image_id": 5, "height": 15, "width": 12, "ignore": None, "instances": [
            {"annotation_id": 500, "category_id": 0, "bbox": [0.0, 0.0, 4.0, 5.0],
             "segmentation": encode_mask(_rect(15, 12, 0, 5, 0, 4)), "valid": True, "ignore": None, "score": 1.0}]},
    }
    out = attach_pseudo_masks(dataset, records)
    assert dataset == before  # input not mutated

    a300, a301, generated = out[0]["annotations"]
    assert a300["segmentation"] == m3 and a300["mask_valid"] is True and a300["bbox"] == [0, 0, 4.0, 5.0]
    assert a301["segmentation"] == m3 and a301["mask_valid"] is False and a301["category_id"] == 1
    assert a300["pseudo_mask"] is True and a301["pseudo_mask"] is True
    # each instance keeps its own ignore region; the image-level one holds only the record's image ignore
    assert a300["ignore_segmentation"] == own_300 and a301["ignore_segmentation"] == own_301
    assert generated == {"bbox": [9.0, 9.0, 2.0, 2.0], "bbox_mode": 1, "category_id": 1, "iscrowd": 0,
                         "segmentation": records[3]["instances"][2]["segmentation"], "mask_valid": True,
                         "pseudo_mask": True}
    np.testing.assert_array_equal(decode_mask(out[0]["ignore_mask"]), _rect(13, 15, 0, 2, 0, 15))

    # image 5: annotation 501 has no pseudo mask -> box and class kept, no mask, mask_valid False; no ignore
    a500, a501 = out[1]["annotations"]
    assert a500["mask_valid"] is True and "ignore_segmentation" not in a500
    assert a501 == dict(dataset[1]["annotations"][1], mask_valid=False)
    assert out[1]["ignore_mask"] is None

    # image 8 has no record: no mask anywhere, its ground-truth polygon does not leak
    for ann in out[2]["annotations"]:
        assert ann["mask_valid"] is False and "segmentation" not in ann
    assert out[2]["ignore_mask"] is None and out[2]["file_name"] == "8.jpg"

    with caplog.at_level("WARNING", logger="wsis.data.pseudo_store"):
        kept = attach_pseudo_masks(dataset, records, keep_existing_masks=True)
    assert "1 instances train on their registered (ground-truth) masks" in caplog.text
    assert kept[2]["annotations"][0]["segmentation"] == [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0]]
    assert kept[2]["annotations"][0]["mask_valid"] is True and "pseudo_mask" not in kept[2]["annotations"][0]
    assert kept[2]["annotations"][1]["mask_valid"] is False
    # a registered mask wins over a pseudo mask of the same instance (masks where the dataset has them)
    dataset[0]["annotations"][0]["segmentation"] = [[0.0, 0.0, 3.0, 0.0, 3.0, 3.0]]
    semi = attach_pseudo_masks(dataset, records, keep_existing_masks=True)
    assert semi[0]["annotations"][0]["segmentation"] == [[0.0, 0.0, 3.0, 0.0, 3.0, 3.0]]
    assert "pseudo_mask" not in semi[0]["annotations"][0] and semi[0]["annotations"][1]["pseudo_mask"] is True
    dataset[2]["annotations"][0]["mask_valid"] = False  # a segmentation flagged unusable is not revived
    assert kept_flags(attach_pseudo_masks(dataset, records, keep_existing_masks=True)[2]) == [False, False]


def kept_flags(d):
    return [a["mask_valid"] for a in d["annotations"]]


def test_attach_after_load(tmp_path, reference):
    dataset = make_dataset()
    _, records = load_pseudo_masks(str(tmp_path / "reference.json"), dataset)
    out = attach_pseudo_masks(dataset, list(records.values())[:4])  # an iterable of records works too
    assert [a["mask_valid"] for d in out[:4] for a in d["annotations"]] == [True, False] * 4
    assert all(a["mask_valid"] is False for d in out[4:] for a in d["annotations"])
    assert out[0]["annotations"][0]["segmentation"] == make_record(3)["instances"][0]["segmentation"]
