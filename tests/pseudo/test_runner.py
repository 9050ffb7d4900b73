import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import load_pseudo_masks, make_provenance
from wsis.pseudo import BoxFillGenerator, run_generator


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
