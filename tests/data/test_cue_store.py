"""Tests of the localisation-cue store (wsis.data.cue_store); detectron2-free."""
import hashlib
import io
import json
import os
import pickle
import random
import zipfile

import numpy as np
import pytest

from wsis.data.cue_store import writer as cue_writer
from wsis.data.cue_store import (
    CueStore,
    CueStoreError,
    CueWriter,
    cue_map_shape,
    load_cues,
    read_cue_map,
    read_cue_record,
)

PROVENANCE = {"method": "cam", "params": {"scales": [1.0, 0.5]}, "wsis_version": "0.2.0", "source": "toy_train",
              "source_hash": "abc", "checkpoint": "model.pth"}
IMAGE_IDS = [3, 5, 8, 13, 21, 34, 55, 89]


def image_size(image_id):
    """(height, width, stride) of a toy image."""
    return 10 + image_id % 7, 12 + image_id % 5, 4 if image_id % 2 else 8


def make_record(image_id):
    """Deterministic maps of a toy image: image_id % 3 classes (0 for 3, 21), in a random (unsorted) order."""
    height, width, stride = image_size(image_id)
    rng = np.random.RandomState(image_id)
    classes = [int(c) for c in rng.permutation(20)[:image_id % 3]]
    cams = rng.rand(len(classes), *cue_map_shape(height, width, stride))
    return {"image_id": image_id, "height": height, "width": width, "stride": stride, "classes": classes,
            "cams": cams}


def make_dataset():
    return [{"file_name": f"{i}.jpg", "image_id": i, "height": image_size(i)[0], "width": image_size(i)[1]}
            for i in IMAGE_IDS]


def folder_bytes(out):
    """{relative path: bytes} of every file under ``out``."""
    files = {}
    for root, _, names in os.walk(out):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, out)] = open(path, "rb").read()
    return files


def write(out, ids, **kwargs):
    with CueWriter(out, PROVENANCE, **kwargs) as writer:
        for i in ids:
            writer.add(make_record(i))
    return folder_bytes(out)


@pytest.fixture
def reference(tmp_path):
    """The files of an uninterrupted, in-order run."""
    return write(str(tmp_path / "reference"), IMAGE_IDS)


# ------------------------------------------------------------------------------------------------------------ format
def test_written_store_is_the_documented_format(tmp_path):
    out = str(tmp_path / "cues")
    cams = np.array([[[0.0, 0.5]], [[1.0, 0.25]]])  # a 3x6 image at stride 4: maps of 1x2
    with CueWriter(out, PROVENANCE) as writer:
        writer.add({"image_id": 7, "height": 3, "width": 6, "stride": 4, "classes": [4, 1], "cams": cams})
    files = folder_bytes(out)
    assert sorted(files) == ["cues.json", "maps/7.npz"]  # journal and temporary files are gone
    sha = hashlib.sha256(files["maps/7.npz"]).hexdigest()
    assert json.loads(files["cues.json"]) == {
        "format": "wsis.cues", "format_version": 1, "provenance": PROVENANCE,
        "images": [{"image_id": 7, "height": 3, "width": 6, "stride": 4, "classes": [4, 1], "file": "maps/7.npz",
                    "sha256": sha}]}
    # canonical bytes: compact, provenance keys sorted, one image per line
    assert files["cues.json"].startswith(b'{"format":"wsis.cues","format_version":1,"provenance":{"checkpoint":')
    assert files["cues.json"].count(b"\n") == 3
    npz = np.load(io.BytesIO(files["maps/7.npz"]))
    assert sorted(npz.files) == ["cams", "classes"]
    assert npz["cams"].dtype == np.float16 and npz["classes"].dtype == np.int64
    np.testing.assert_array_equal(npz["cams"], cams.astype(np.float16))
    np.testing.assert_array_equal(npz["classes"], [4, 1])  # in the given order
    # no timestamp: every entry has the same fixed date and attributes, deflated
    infos = zipfile.ZipFile(io.BytesIO(files["maps/7.npz"])).infolist()
    assert [i.filename for i in infos] == ["cams.npy", "classes.npy"]
    assert {(i.date_time, i.compress_type, i.create_system) for i in infos} == {
        ((1980, 1, 1, 0, 0, 0), zipfile.ZIP_DEFLATED, 3)}


def test_round_trip_within_float16_precision(tmp_path, reference):
    out = str(tmp_path / "reference")
    provenance, entries = load_cues(out, make_dataset(), require_all=True)
    assert provenance == PROVENANCE and list(entries) == IMAGE_IDS
    for i in IMAGE_IDS:
        want = make_record(i)
        classes, cams = read_cue_map(out, entries[i])
        assert classes.dtype == np.int64 and classes.tolist() == want["classes"]
        assert cams.dtype == np.float32 and cams.shape == want["cams"].shape
        np.testing.assert_allclose(cams, want["cams"], rtol=2 ** -11, atol=2 ** -24)
        assert entries[i]["classes"] == want["classes"] and entries[i]["stride"] == want["stride"]
    assert read_cue_map(out, entries[21])[1].shape == (0, 3, 4)  # an untagged 10x13 image at stride 4

    store = CueStore(out)
    store = pickle.loads(pickle.dumps(store))  # holds no open file: data-loader workers get copies
    assert len(store) == 8 and store.ids() == IMAGE_IDS and 5 in store and 6 not in store
    assert store.provenance == PROVENANCE
    np.testing.assert_array_equal(store[5][1], read_cue_map(out, entries[5])[1])
    with pytest.raises(KeyError, match="no cues for image_id=6"):
        store[6]
    # a record read back is re-added as the same bytes (the merge of shards relies on it)
    other = str(tmp_path / "again")
    with CueWriter(other, PROVENANCE) as writer:
        for i in reversed(IMAGE_IDS):
            writer.add(read_cue_record(out, entries[i]))
    assert folder_bytes(other) == reference


def test_out_of_order_adds_give_identical_bytes(tmp_path, reference):
    ids = list(IMAGE_IDS)
    random.Random(0).shuffle(ids)
    assert ids != IMAGE_IDS
    assert write(str(tmp_path / "shuffled"), ids) == reference
    assert sorted(reference) == ["cues.json"] + sorted(f"maps/{i}.npz" for i in IMAGE_IDS)


def test_equal_maps_give_equal_bytes_whatever_their_dtype_layout_or_zero_sign(tmp_path):
    record = make_record(5)
    record["cams"][0, 1, 1] = 0.0
    negative_zero = record["cams"].copy()
    negative_zero[0, 1, 1] = -0.0
    variants = [record["cams"], record["cams"].astype(np.float32), np.asfortranarray(record["cams"]), negative_zero]
    stores = []
    for k, cams in enumerate(variants):
        with CueWriter(str(tmp_path / str(k)), PROVENANCE) as writer:
            writer.add(dict(record, cams=cams))
        stores.append(folder_bytes(str(tmp_path / str(k))))
    assert all(s == stores[0] for s in stores[1:])


# ------------------------------------------------------------------------------------------------------------ writer
def test_simulated_kill_then_resume_gives_identical_bytes(tmp_path, reference):
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    for i in [8, 3, 21]:
        writer.add(make_record(i))
    writer.close()  # killed: no finalize
    assert not os.path.exists(os.path.join(out, "cues.json"))
    journal = os.path.join(out, "cues.json.partial.jsonl")
    with open(journal, "rb") as f:
        line = f.read().splitlines(keepends=True)[-1]
    with open(journal, "ab") as f:  # the image in flight when the kill came: its map written, its line half
        f.write(line.replace(b'"image_id":21', b'"image_id":55')[:40])
    open(os.path.join(out, "maps", "55.npz"), "wb").write(b"half a map")
    open(os.path.join(out, "maps", ".tmp-x.npz"), "wb").write(b"a temporary file of a kill")

    writer = CueWriter(out, PROVENANCE)
    assert writer.done_ids() == {3, 8, 21}
    writer.add(make_record(89))
    writer.close()  # killed again: the half line is gone, not buried under the new one
    with CueWriter(out, PROVENANCE) as writer:
        assert writer.done_ids() == {3, 8, 21, 89}
        for i in IMAGE_IDS:
            if i not in writer.done_ids():
                writer.add(make_record(i))
    assert folder_bytes(out) == reference


@pytest.mark.parametrize("damage", ["missing", "replaced"])
def test_resume_redoes_an_image_whose_map_is_missing_or_changed(tmp_path, reference, caplog, damage):
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    for i in [8, 3, 21]:
        writer.add(make_record(i))
    writer.close()
    path = os.path.join(out, "maps", "3.npz")
    if damage == "missing":
        os.remove(path)
    else:
        open(path, "ab").write(b"\0")
    with CueWriter(out, PROVENANCE) as writer:
        assert writer.done_ids() == {8, 21}
        for i in IMAGE_IDS:
            if i not in writer.done_ids():
                writer.add(make_record(i))
    assert f"image_id=3: its map maps/3.npz is {'missing' if damage == 'missing' else 'not the one'}" in caplog.text
    assert folder_bytes(out) == reference


def test_corruption_in_the_middle_of_the_journal_is_an_error(tmp_path):
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    for i in [8, 3, 21]:
        writer.add(make_record(i))
    writer.close()
    journal = os.path.join(out, "cues.json.partial.jsonl")
    lines = open(journal, "rb").read().splitlines(keepends=True)
    open(journal, "wb").write(b"".join([lines[0], lines[1][:30] + b"\n", *lines[2:]]))
    with pytest.raises(CueStoreError, match=r"line 2 is corrupt"):
        CueWriter(out, PROVENANCE)
    open(journal, "wb").write(b"".join([lines[0], lines[1], lines[1], lines[2]]))
    with pytest.raises(CueStoreError, match=r"line 3: image_id=8 appears twice"):
        CueWriter(out, PROVENANCE)
    assert CueWriter(out, PROVENANCE, overwrite=True).done_ids() == set()


def test_resume_with_different_provenance_is_refused_overwrite_starts_again(tmp_path):
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    writer.add(make_record(5))
    writer.close()
    other = dict(PROVENANCE, params={"scales": [1.0]}, checkpoint="other.pth")
    with pytest.raises(CueStoreError, match=r"different provenance.*checkpoint: 'model.pth' -> 'other.pth'; "
                                            r"params\.scales: \[1\.0, 0\.5\] -> \[1\.0\]"):
        CueWriter(out, other)
    with CueWriter(out, other, overwrite=True) as writer:
        assert writer.done_ids() == set()
        writer.add(make_record(8))
    assert sorted(folder_bytes(out)) == ["cues.json", "maps/8.npz"]  # the stale map of image 5 is gone
    assert load_cues(out)[0]["checkpoint"] == "other.pth"


def test_finalized_store_is_not_silently_regenerated(tmp_path, reference):
    out = str(tmp_path / "reference")
    with pytest.raises(CueStoreError, match="already finalized"):
        CueWriter(out, PROVENANCE)
    assert write(out, IMAGE_IDS[:2], overwrite=True) == write(str(tmp_path / "two"), IMAGE_IDS[:2])


def test_duplicate_add_is_an_error_also_across_a_resume(tmp_path):
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    writer.add(make_record(3))
    with pytest.raises(CueStoreError, match="image_id=3 was already added"):
        writer.add(make_record(3))
    writer.close()
    writer = CueWriter(out, PROVENANCE)
    with pytest.raises(CueStoreError, match="image_id=3 was already added"):
        writer.add(make_record(3))
    writer.finalize()
    with pytest.raises(CueStoreError, match="already finalized"):
        writer.add(make_record(5))


@pytest.mark.parametrize("corrupt, message", [
    (lambda r: r.update(cams=r["cams"][:, :-1]), r"image_id=5: cams has shape \(2, 3, 3\), expected .* = \(2, 4, 3\)"),
    (lambda r: r.update(stride=8), r"image_id=5: cams has shape \(2, 4, 3\), expected .* = \(2, 2, 2\)"),
    (lambda r: r["cams"].__setitem__((1, 0, 0), np.nan), r"image_id=5: cams must be finite"),
    (lambda r: r["cams"].__setitem__((0, 2, 1), -0.1), r"image_id=5: cams must be non-negative"),
    (lambda r: r["cams"].__setitem__((0, 0, 0), 1e5), r"image_id=5: cams overflow float16"),
    (lambda r: r.update(classes=[7, 7]), r"image_id=5: class \[7\] appear more than once"),
    (lambda r: r.update(classes=[7, -1]), r"image_id=5: class ids must be non-negative"),
    (lambda r: r.update(classes=[7, 1.0]), r"image_id=5: a class id must be an int, got 1.0"),
    (lambda r: r.update(cams=r["cams"] > 0.5), r"image_id=5: cams must be a real-valued array, got dtype bool"),
    (lambda r: r.update(image_id="5"), r"image_id must be an int, got '5'"),
    (lambda r: r.update(height=0), r"image_id=5: height must be positive"),
    (lambda r: r.update(sride=4), r"image_id=5: unknown record keys \['sride'\]"),
    (lambda r: r.pop("cams"), r"image_id=5: no 'cams'"),
])
def test_add_validates_the_record(tmp_path, corrupt, message):
    record = make_record(5)  # 15x12 at stride 4: maps of 4x3, classes [7, 9]
    corrupt(record)
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    with pytest.raises(CueStoreError, match=message) as info:
        writer.add(record)
    assert os.path.join(out, "cues.json") in str(info.value)  # names the store
    assert writer.done_ids() == set() and os.listdir(os.path.join(out, "maps")) == []


def test_add_accepts_numpy_scalars_integer_maps_and_empty_images(tmp_path):
    out = str(tmp_path / "cues")
    with CueWriter(out, PROVENANCE) as writer:
        writer.add({"image_id": np.int64(4), "height": np.int32(5), "width": 9, "stride": 2,
                    "classes": np.array([2, 0]), "cams": np.ones((2, 3, 5), np.uint8)})
        writer.add({"image_id": 6, "height": 1, "width": 1, "stride": 16, "classes": [], "cams": np.zeros((0, 1, 1))})
    store = CueStore(out)
    assert store[4][0].tolist() == [2, 0] and (store[4][1] == 1).all()
    assert store[6][0].shape == (0,) and store[6][1].shape == (0, 1, 1)


@pytest.mark.skipif(cue_writer.fcntl is None, reason="needs POSIX file locks")
def test_second_writer_on_the_same_store_is_refused(tmp_path):
    out = str(tmp_path / "cues")
    writer = CueWriter(out, PROVENANCE)
    writer.add(make_record(3))
    with pytest.raises(CueStoreError, match="locked by another CueWriter"):
        CueWriter(out, PROVENANCE, overwrite=True)
    assert writer.done_ids() == {3} and os.listdir(os.path.join(out, "maps")) == ["3.npz"]  # untouched
    writer.close()


# ----------------------------------------------------------------------------------------------------------- reading
def test_read_detects_a_corrupt_or_missing_map(tmp_path, reference):
    out = str(tmp_path / "reference")
    store = CueStore(out)
    path = os.path.join(out, "maps", "8.npz")
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(CueStoreError, match=r"8.npz: image_id=8: the map file is corrupt or was replaced"):
        store[8]
    os.remove(path)
    with pytest.raises(CueStoreError, match=r"image_id=8: the map file is missing"):
        store[8]
    store[5]  # the others are fine


def _assert_load_error(out, pattern, dataset=None, **kwargs):
    with pytest.raises(CueStoreError, match=pattern) as info:
        load_cues(out, dataset, **kwargs)
    assert os.path.join(out, "cues.json") in str(info.value)


def test_load_checks_the_index_and_the_dataset(tmp_path, reference):
    out = str(tmp_path / "reference")
    index = os.path.join(out, "cues.json")
    data = json.loads(reference["cues.json"])

    dataset = make_dataset()
    dataset[2]["height"] += 1
    _assert_load_error(out, r"image_id=8: height is 11 in the cues but 12 in the dataset \(8.jpg\)", dataset)
    _assert_load_error(out, r"image_id=13 is not in the dataset", [d for d in make_dataset() if d["image_id"] != 13])
    _assert_load_error(out, r"1 of 9 dataset images have no cues \(image_id=\[99\]\)",
                       make_dataset() + [{"image_id": 99, "height": 1, "width": 1}], require_all=True)

    for change, pattern in [
        (lambda d: d.update(format_version=2), r"format_version 2 is not supported"),
        (lambda d: d.update(format="wsis.pseudo_masks"), r"not a wsis cue store"),
        (lambda d: d["images"].reverse(), r"image_id=55 is out of order"),
        (lambda d: d["images"].append(d["images"][-1]), r"image_id=89 appears more than once"),
        (lambda d: d["images"][1].update(file="../5.npz"), r"image_id=5: file must be 'maps/5.npz'"),
        (lambda d: d["images"][1].update(sha256="x"), r"image_id=5: sha256 must be 64 lowercase hex"),
        (lambda d: d["images"][1].pop("stride"), r"image_id=5: an index entry has the keys"),
        (lambda d: d["provenance"].pop("source"), r"provenance\['source'\] must be a str"),
    ]:
        bad = json.loads(json.dumps(data))
        change(bad)
        open(index, "w").write(json.dumps(bad))
        _assert_load_error(out, pattern)
    open(index, "wb").write(reference["cues.json"][:100])
    _assert_load_error(out, r"not valid JSON")
    os.remove(index)
    _assert_load_error(out, r"cues.json does not exist$")
    open(os.path.join(out, "cues.json.partial.jsonl"), "w").write("")
    _assert_load_error(out, r"does not exist; an interrupted generator left its journal")


def test_map_must_match_its_entry(tmp_path, reference):
    out = str(tmp_path / "reference")
    _, entries = load_cues(out)
    swapped = dict(entries[8], classes=[3], sha256=entries[8]["sha256"])  # the index says one thing, the map another
    with pytest.raises(CueStoreError, match=r"image_id=8: the map holds classes \[\d+, \d+\], the index \[3\]"):
        read_cue_map(out, swapped)
    with pytest.raises(CueStoreError, match=r"image_id=8: cams has shape \(2, 2, 2\), expected \(2, 3, 4\)"):
        read_cue_map(out, dict(entries[8], stride=4))
