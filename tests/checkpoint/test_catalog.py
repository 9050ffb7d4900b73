"""The shipped configs by name: every file is listed, names and checkpoint names round-trip, unknown names fail
clearly, and an installed (non-editable) wsis finds the same configs with their _BASE_ chains."""
import glob
import json
import os
import subprocess
import sys

import pytest
from fvcore.common.config import CfgNode

from wsis.checkpoint import ModelZooError, checkpoint_name, config_of_checkpoint, list_configs
from wsis.model_zoo import get_checkpoint_url, get_config_file

from conftest import REPO


def _repo_configs():
    shared = [os.path.relpath(p, os.path.join(REPO, "configs")).replace(os.sep, "/")
              for p in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)]
    projects = [f"{p.split(os.sep)[-3]}/{os.path.basename(p)}"
                for p in glob.glob(os.path.join(REPO, "projects", "*", "configs", "*.yaml"))]
    return sorted(shared + projects)


def test_every_config_file_has_a_name_that_finds_it():
    names = list_configs()
    assert names == _repo_configs() and "BBTP/bbtp_R_101_FPN_voc_aug.yaml" in names
    assert "quick_schedules/proxy_mask_rcnn_coco_tiny_instant_test.yaml" in names
    for name in names:
        path = get_config_file(name)
        project, _, rest = name.partition("/")
        expected = (os.path.join(REPO, "projects", project, "configs", rest) if os.path.isdir(
            os.path.join(REPO, "projects", project)) else os.path.join(REPO, "configs", name))
        assert os.path.samefile(path, expected), name


def test_checkpoint_names_round_trip():
    name = "IRNet/irnet_R18_scratch_copy_paste.yaml"
    assert checkpoint_name(name) == "IRNet/irnet_R18_scratch_copy_paste/model_final.pth"
    assert get_checkpoint_url(name) == "wsis://IRNet/irnet_R18_scratch_copy_paste/model_final.pth"
    for n in list_configs():
        assert os.path.samefile(config_of_checkpoint(checkpoint_name(n)), get_config_file(n))


@pytest.mark.parametrize("bad", ["BBTP/nope.yaml", "BBTP/bbtp_R_101_FPN_voc_aug", "Nope/x.yaml",
                                 "BBTP/../../setup.py.yaml", "", "/etc/passwd.yaml"])
def test_unknown_config_names_fail_clearly(bad):
    with pytest.raises(ModelZooError, match="config"):
        get_config_file(bad)


@pytest.mark.parametrize("bad", ["BBTP/nope/model_final.pth", "model_final.pth", "BBTP/bbtp_R_101_FPN_voc_aug/"])
def test_unknown_checkpoint_names_fail_clearly(bad):
    with pytest.raises(ModelZooError, match="not a (wsis model|model-zoo path)"):
        config_of_checkpoint(bad)


LOAD_ALL = """
import json, os, sys
import wsis
from fvcore.common.config import CfgNode
from wsis.model_zoo import get_config_file, list_configs
print(json.dumps({"wsis": wsis.__file__, "configs": {n: [get_config_file(n), CfgNode.load_yaml_with_base(
    get_config_file(n))] for n in list_configs()}}))
"""


def test_an_installed_wsis_finds_its_configs(tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(target), REPO], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", LOAD_ALL], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout)
    assert got["wsis"].startswith(str(target))  # the installed copy, not the checkout
    assert sorted(got["configs"]) == _repo_configs()
    for name, (path, cfg) in got["configs"].items():
        assert path.startswith(str(target)) and not os.path.islink(path), name
        assert cfg == json.loads(json.dumps(CfgNode.load_yaml_with_base(get_config_file(name)))), name
