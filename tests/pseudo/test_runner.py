import contextlib
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from wsis.data.coco_weak import load_coco_instances
from wsis.data.cue_store import CueStore, CueStoreError, cue_map_shape, load_cues
from wsis.data.pseudo_store import load_pseudo_masks, make_provenance
from wsis.pseudo import BoxFillGenerator, run_generator
from wsis.pseudo.runner import CUES


class FailOn:
    """Box-fill that fails on one image id, like a corrupt image would (picklable for workers)."""

    def __init__(self, bad_id):
        self.bad_id = bad_id
        self.inner = BoxFillGenerator()
        self.params = {}

    def __call__(self, d):
        if d["image_id"] == self.bad_id:
            raise OSError("cannot identify image file")
        return self.inner(d)


_ACTIVE = []  # the process contexts entered in this process


class NeedsContext(BoxFillGenerator):
    """Box-fill that works only inside its process context (as a generator that sets torch threads there)."""

    @contextlib.contextmanager
    def process_context(self):
        _ACTIVE.append(True)
        try:
            yield
        finally:
            _ACTIVE.pop()

    def __call__(self, d):
        if len(_ACTIVE) != 1:
            raise RuntimeError(f"{len(_ACTIVE)} process contexts entered")
        return super().__call__(d)


def _prov(json_file):
    return make_provenance("boxfill", {"overlap": "keep"}, source=json_file, source_hash="0")


def test_workers_give_identical_bytes(coco_tiny, tmp_path):
    dicts, _ = load_coco_instances(*coco_tiny, supervision="box")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert run_generator(dicts, BoxFillGenerator(), str(a), _prov(coco_tiny[0]), workers=1, progress=False) == []
    assert run_generator(dicts, BoxFillGenerator(), str(b), _prov(coco_tiny[0]), workers=2, progress=False) == []
    assert a.read_bytes() == b.read_bytes()
    _, records = load_pseudo_masks(str(a), dicts, require_all=True)
    assert len(records) == 80


@pytest.mark.parametrize("workers", [1, 2])
def test_process_context_is_entered_once_per_process(tiny_coco, tmp_path, workers):
    dicts, _ = load_coco_instances(*tiny_coco, supervision="box")
    out = tmp_path / "p.json"
    assert run_generator(dicts, NeedsContext(), str(out), _prov("x"), workers=workers, progress=False) == []
    assert sorted(load_pseudo_masks(str(out), dicts)[1]) == [7, 9]
    assert _ACTIVE == []  # left again in this process after an in-process run; never entered here with workers


def test_bad_image_is_skipped_and_reported(tiny_coco, tmp_path, caplog):
    dicts, _ = load_coco_instances(*tiny_coco, supervision="box")
    out = tmp_path / "p.json"
    skipped = run_generator(dicts, FailOn(9), str(out), _prov("x"), workers=2, progress=False)
    assert len(skipped) == 1 and skipped[0][0] == 9 and "b.jpg: OSError: cannot identify" in skipped[0][1]
    _, records = load_pseudo_masks(str(out), dicts)
    assert sorted(records) == [7]
    assert "1 of 2 images skipped" in caplog.text


SLOW_SCRIPT = """
import sys, time
from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import make_provenance
from wsis.pseudo import BoxFillGenerator, run_generator

class Slow(BoxFillGenerator):
    def __call__(self, d):
        time.sleep(float(sys.argv[4]))
        return super().__call__(d)

dicts, _ = load_coco_instances(sys.argv[1], sys.argv[2], supervision="box")
prov = make_provenance("boxfill", {"overlap": "keep"}, source=sys.argv[1], source_hash="0")
run_generator(dicts, Slow(), sys.argv[3], prov, workers=int(sys.argv[5]), progress=False)
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_run_resumes_to_identical_bytes(coco_tiny, tmp_path, workers):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_SCRIPT)
    ref, out = tmp_path / "ref.json", tmp_path / "out.json"
    dicts, _ = load_coco_instances(*coco_tiny, supervision="box")
    run_generator(dicts, BoxFillGenerator(), str(ref), _prov(coco_tiny[0]), progress=False)

    proc = subprocess.Popen([sys.executable, str(script), *coco_tiny, str(out), "0.05", str(workers)],
                            start_new_session=True)
    journal = [p for p in tmp_path.iterdir() if p.name.startswith("out.json") and p.name != "out.json"]
    deadline = time.time() + 60
    while time.time() < deadline:
        journal = [p for p in tmp_path.iterdir() if p.name.startswith("out.json.")]
        if journal and journal[0].read_text().count("\n") >= 10:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run was killed before it could finish"
    assert journal and journal[0].exists()

    subprocess.run([sys.executable, str(script), *coco_tiny, str(out), "0", str(workers)], check=True)
    assert out.read_bytes() == ref.read_bytes()
    assert not any(p.name.startswith("out.json.") for p in tmp_path.iterdir()), "journal removed"


# ---------------------------------------------------------------------------------------- the same runner, cue stores
class CueMaps:
    """Deterministic random cue maps from the image id, as a CAM generator gives (picklable for workers)."""

    params = {"stride": 4}

    def __init__(self, bad_id=None, delay=0.0):
        self.bad_id, self.delay = bad_id, delay

    def __call__(self, d):
        if d["image_id"] == self.bad_id:
            raise OSError("cannot identify image file")
        time.sleep(self.delay)
        rng = np.random.RandomState(d["image_id"])
        classes = rng.permutation(6)[:rng.randint(0, 3)].tolist()
        cams = rng.rand(len(classes), *cue_map_shape(d["height"], d["width"], 4))
        return {"image_id": d["image_id"], "height": d["height"], "width": d["width"], "stride": 4,
                "classes": classes, "cams": cams}


def cue_dicts(n=40):
    return [{"image_id": 3 * i + 1, "file_name": f"{3 * i + 1}.jpg", "height": 20 + i % 9, "width": 30 + i % 7,
             "annotations": []} for i in range(n)]


def folder_bytes(out):
    """{relative path: bytes} of every file under ``out``."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(pathlib.Path(out).rglob("*")) if p.is_file()}


def test_cue_store_runs_to_identical_bytes_with_any_workers_and_is_left_when_up_to_date(tmp_path, caplog):
    dicts = cue_dicts()
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_generator(dicts, CueMaps(), str(a), _prov("x"), workers=1, progress=False, store="cues") == []
    assert run_generator(dicts, CueMaps(), str(b), _prov("x"), workers=2, progress=False, store=CUES) == []
    files = folder_bytes(a)
    assert files == folder_bytes(b) and len(files) == 41
    store = CueStore(str(a), dicts, require_all=True)
    np.testing.assert_allclose(store[4][1], CueMaps()(dicts[1])["cams"], rtol=1e-3)

    mtime = (a / "cues.json").stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="wsis.pseudo.runner"):
        assert run_generator(dicts, CueMaps(), str(a), _prov("x"), progress=False, store="cues") == []
    assert "is complete and up to date" in caplog.text and (a / "cues.json").stat().st_mtime_ns == mtime
    other = make_provenance("cam", {"stride": 8}, source="x", source_hash="0")
    with pytest.raises(CueStoreError, match="exists and was made with other settings"):
        run_generator(dicts, CueMaps(), str(a), other, progress=False, store="cues")
    assert run_generator(dicts[:5], CueMaps(), str(a), other, progress=False, overwrite=True, store="cues") == []
    assert sorted(folder_bytes(a)) == ["cues.json"] + sorted(f"maps/{d['image_id']}.npz" for d in dicts[:5])
    with pytest.raises(ValueError, match="unknown store kind 'cams'"):
        run_generator(dicts, CueMaps(), str(a), other, store="cams")


def test_cue_store_bad_image_is_skipped_and_reported(tmp_path, caplog):
    dicts = cue_dicts(6)
    out = tmp_path / "cues"
    skipped = run_generator(dicts, CueMaps(bad_id=7), str(out), _prov("x"), workers=2, progress=False, store="cues")
    assert skipped == [(7, "7.jpg: OSError: cannot identify image file")]
    assert sorted(load_cues(str(out), dicts)[1]) == [1, 4, 10, 13, 16]
    assert "1 of 6 images skipped" in caplog.text


CUE_SCRIPT = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("cue_runner_test", sys.argv[1])
test = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = test  # the workers unpickle its generator
spec.loader.exec_module(test)
test.run_generator(test.cue_dicts(), test.CueMaps(delay=float(sys.argv[3])), sys.argv[2], test._prov("x"),
                   workers=int(sys.argv[4]), progress=False, store="cues")
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_cue_run_resumes_to_identical_bytes(tmp_path, workers):
    ref, out = tmp_path / "ref", tmp_path / "out"
    run_generator(cue_dicts(), CueMaps(), str(ref), _prov("x"), progress=False, store="cues")
    args = [sys.executable, "-c", CUE_SCRIPT, os.path.abspath(__file__), str(out)]
    proc = subprocess.Popen([*args, "0.05", str(workers)], start_new_session=True)
    journal = out / "cues.json.partial.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and not (journal.exists() and journal.read_bytes().count(b"\n") >= 10):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert journal.exists() and not (out / "cues.json").exists(), "the run was killed before it could finish"

    subprocess.run([*args, "0", str(workers)], check=True)
    assert folder_bytes(out) == folder_bytes(ref)
