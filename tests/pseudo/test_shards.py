"""Scale-out: a deterministic split by image id, one resumable store per shard, and a merge that gives the bytes of a
single run; refused merges name the file."""
import json
import os
import pathlib

import pytest

from wsis.data.cue_store import CueStoreError, load_cues
from wsis.data.pseudo_store import PseudoMaskError, load_pseudo_masks, make_provenance
from wsis.pseudo import run_generator
from wsis.pseudo.shards import merge_cue_shards, merge_shards, shard_dicts, shard_provenance

from conftest import load_tool
from test_runner import CueMaps, cue_dicts, folder_bytes


def _dicts(ids):
    return [{"image_id": i, "annotations": []} for i in ids]


def test_split_is_by_sorted_image_id_and_covers_every_image_once():
    dicts = _dicts([30, 10, 20, 50, 40])
    parts = [[d["image_id"] for d in shard_dicts(dicts, 2, i)] for i in range(2)]
    assert parts == [[30, 10, 50], [20, 40]]  # ranks 0, 2, 4 and 1, 3 of the sorted ids; the input order is kept
    again = [[d["image_id"] for d in shard_dicts(list(reversed(dicts)), 2, i)] for i in range(2)]
    assert [sorted(p) for p in again] == [sorted(p) for p in parts]  # independent of the list's order
    assert [d["image_id"] for d in shard_dicts(dicts, 1, 0)] == [30, 10, 20, 50, 40]
    assert shard_dicts(dicts, 7, 6) == []  # more shards than images: empty shards are fine
    for k, i in ((0, 0), (2, 2), (2, -1), (1.5, 0)):
        with pytest.raises(ValueError):
            shard_dicts(dicts, k, i)
    assert shard_provenance({"a": 1}, 1, 0) == {"a": 1}
    assert shard_provenance({"a": 1}, 3, 2) == {"a": 1, "shard": {"index": 2, "count": 3}}


def _run(tool, common, out, *extra):
    return tool.main([*common, "--out", str(out), *extra])


def test_sharded_runs_merge_to_the_bytes_of_one_run(coco_tiny, tmp_path):
    tool = load_tool("make_pseudo_masks")
    common = ["--json", coco_tiny[0], "--images", coco_tiny[1], "--no-progress", "--num-vis", "0",
              "--method", "boxfill", "--workers", "1"]
    single = _run(tool, common, tmp_path / "single")
    shards = []
    for i in range(3):
        m = _run(tool, common, tmp_path / f"s{i}", "--num-shards", "3", "--shard-index", str(i))
        assert m["shard"] == {"index": i, "count": 3} and m["num_images"] in (26, 27)
        shards.append(str(tmp_path / f"s{i}" / "pseudo_masks.json"))
    want = (tmp_path / "single" / "pseudo_masks.json").read_bytes()
    tool.main(["--merge", *reversed(shards), "--out", str(tmp_path / "merged.json")])
    assert (tmp_path / "merged.json").read_bytes() == want
    # a folder --out also gets the job's outputs, for the whole source
    merged = tool.main(["--merge", *shards, "--json", coco_tiny[0], "--images", coco_tiny[1], "--num-vis", "1",
                        "--out", str(tmp_path / "merged")])
    assert (tmp_path / "merged" / "pseudo_masks.json").read_bytes() == want
    assert merged["all/mean_iou"] == single["all/mean_iou"] and merged["num_images"] == 80
    assert json.loads((tmp_path / "merged" / "metrics.json").read_text())["num_instances"] == 804
    # a shard is resumable on its own: a re-run finds it complete
    again = _run(tool, common, tmp_path / "s1", "--num-shards", "3", "--shard-index", "1")
    assert (tmp_path / "s1" / "pseudo_masks.json").read_bytes() == open(shards[1], "rb").read()
    assert again["num_images"] == len(load_pseudo_masks(shards[1])[1])

    # refused: a shard missing, given twice, from another run, or not a shard at all
    with pytest.raises(PseudoMaskError, match=r"shard\(s\) \[2\] of 3 missing"):
        merge_shards(shards[:2], str(tmp_path / "x.json"))
    with pytest.raises(PseudoMaskError, match="shard 0 is also"):
        merge_shards([shards[0], shards[0], shards[1]], str(tmp_path / "x.json"))
    other = _run(tool, common, tmp_path / "o2", "--num-shards", "3", "--shard-index", "2",
                 "WSIS.PSEUDO.BOXFILL.OVERLAP", "smallest")
    assert other["params"] == {"overlap": "smallest"}
    with pytest.raises(PseudoMaskError, match="another run"):
        merge_shards([*shards[:2], str(tmp_path / "o2" / "pseudo_masks.json")], str(tmp_path / "x.json"))
    with pytest.raises(PseudoMaskError, match="not a shard store"):
        merge_shards([str(tmp_path / "single" / "pseudo_masks.json")], str(tmp_path / "x.json"))
    with pytest.raises(SystemExit, match="exists"):  # the CLI: one line, no traceback
        tool.main(["--merge", *shards, "--out", str(tmp_path / "merged.json")])


def test_wsps_shards_merge_to_the_bytes_of_one_run(tiny_coco, tmp_path):
    tool = load_tool("make_pseudo_masks")
    common = ["--json", tiny_coco[0], "--images", tiny_coco[1], "--no-progress", "--num-vis", "0", "--workers", "1"]
    fast = ["WSIS.PSEUDO.WSPS.GRABCUT.BOX_SIZE", "64", "WSIS.PSEUDO.WSPS.CRF.ITERATIONS", "3"]
    _run(tool, common, tmp_path / "single", *fast)
    for i in range(2):
        _run(tool, common, tmp_path / f"s{i}", "--num-shards", "2", "--shard-index", str(i), *fast)
    tool.main(["--merge", str(tmp_path / "s0" / "pseudo_masks.json"), str(tmp_path / "s1" / "pseudo_masks.json"),
               "--out", str(tmp_path / "merged.json")])
    assert (tmp_path / "merged.json").read_bytes() == (tmp_path / "single" / "pseudo_masks.json").read_bytes()


# ------------------------------------------------------------------------------------------------- cue-store shards
def _cue_run(dicts, out, provenance, workers=1, num_shards=1, shard_index=0):
    mine = shard_dicts(dicts, num_shards, shard_index)
    assert run_generator(mine, CueMaps(), str(out), shard_provenance(provenance, num_shards, shard_index),
                         workers=workers, progress=False, store="cues") == []
    return str(out)


@pytest.mark.parametrize("workers", [1, 2])
def test_cue_shards_merge_to_the_bytes_of_one_run(tmp_path, workers):
    dicts, prov = cue_dicts(), make_provenance("cam", CueMaps.params, source="toy", source_hash="0")
    want = folder_bytes(_cue_run(dicts, tmp_path / "single", prov))
    shards = [_cue_run(dicts, tmp_path / f"s{i}", prov, workers, 3, i) for i in range(3)]
    assert [len(load_cues(s)[1]) for s in shards] == [14, 13, 13]
    provenance, entries = merge_cue_shards(list(reversed(shards)), str(tmp_path / "merged"))
    assert folder_bytes(tmp_path / "merged") == want
    assert provenance == load_cues(str(tmp_path / "single"))[0]
    assert entries == load_cues(str(tmp_path / "single"))[1]
    merge_shards(shards, str(tmp_path / "merged"), overwrite=True, store="cues")  # the one implementation
    assert folder_bytes(tmp_path / "merged") == want


def test_cue_merge_refuses_missing_repeated_foreign_and_damaged_shards(tmp_path):
    dicts, prov = cue_dicts(12), make_provenance("cam", CueMaps.params, source="toy", source_hash="0")
    shards = [_cue_run(dicts, tmp_path / f"s{i}", prov, 1, 3, i) for i in range(3)]
    out = str(tmp_path / "merged")
    with pytest.raises(CueStoreError, match=r"shard\(s\) \[2\] of 3 missing"):
        merge_cue_shards(shards[:2], out)
    with pytest.raises(CueStoreError, match="shard 0 is also"):
        merge_cue_shards([shards[0], shards[0], shards[1]], out)
    other = _cue_run(dicts, tmp_path / "o2", dict(prov, checkpoint="other.pth"), 1, 3, 2)
    with pytest.raises(CueStoreError, match="o2: a shard of another run"):
        merge_cue_shards([*shards[:2], other], out)
    with pytest.raises(CueStoreError, match="single: not a shard store"):
        merge_cue_shards([_cue_run(dicts, tmp_path / "single", prov)], out)
    overlapping = _cue_run(dicts[1:], tmp_path / "t2", prov, 1, 3, 2)  # a shard of another split of the images
    with pytest.raises(CueStoreError, match="t2: image id 10 is also in another shard"):
        merge_cue_shards([*shards[:2], overlapping], out)
    with pytest.raises(CueStoreError, match="is one of the shards"):
        merge_cue_shards(shards, shards[1], overwrite=True)
    assert not os.path.exists(out)
    merge_cue_shards(shards, out)
    with pytest.raises(CueStoreError, match="merged exists; pass --overwrite"):
        merge_cue_shards(shards, out)
    victim = sorted(pathlib.Path(shards[1], "maps").iterdir())[0]
    victim.write_bytes(victim.read_bytes() + b"\0")
    with pytest.raises(CueStoreError, match=f"{victim.name}: image_id=\\d+: the map file is corrupt"):
        merge_cue_shards(shards, out, overwrite=True)
