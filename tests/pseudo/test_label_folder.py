"""The folder of a resumable per-image map job: params.json, refusal of other params, the skip report."""
import json
import os

import pytest

from wsis.pseudo.label_folder import claim_label_folder, missing_maps, write_skip_report


def test_claim_resume_refuse_overwrite(tmp_path):
    out = str(tmp_path / "maps")
    assert claim_label_folder(out, {"a": (1, 2)}) == {"a": [1, 2]}
    assert json.load(open(os.path.join(out, "params.json"))) == {"a": [1, 2]}
    open(os.path.join(out, "3.png"), "wb").close()
    claim_label_folder(out, {"a": [1, 2]})  # the same params: kept, resumable
    assert os.path.exists(os.path.join(out, "3.png"))
    assert [d["image_id"] for d in missing_maps(out, [{"image_id": 3}, {"image_id": 4}])] == [4]
    with pytest.raises(ValueError, match=r"holds things of old \(.*params.json\); pass --overwrite"):
        claim_label_folder(out, {"a": [1]}, holds="things of old")
    claim_label_folder(out, {"a": [1]}, overwrite=True)
    assert sorted(os.listdir(out)) == ["params.json"]


def test_skip_report_follows_the_last_run(tmp_path):
    write_skip_report(str(tmp_path), [(9, "x"), (2, "y")])
    report = json.load(open(tmp_path / "skipped.json"))
    assert report == [{"image_id": 2, "reason": "y"}, {"image_id": 9, "reason": "x"}]
    write_skip_report(str(tmp_path), [])
    assert not (tmp_path / "skipped.json").exists()
