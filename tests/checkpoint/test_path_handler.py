"""wsis:// paths: a local folder or mirror from WSIS_MODEL_ZOO, clear failures for unknown or missing names, and a
checkpoint loaded through the path by fvcore's Checkpointer (detectron2's: tests/d2/test_model_zoo_d2.py)."""

import pytest
import torch
from fvcore.common.checkpoint import Checkpointer
from fvcore.common.file_io import PathManager

from wsis.checkpoint import ENV, ModelZooError, WSISHandler, register_wsis_handler, resolve

NAME = "BBTP/bbtp_R_101_FPN_voc_aug/model_final.pth"


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    path = tmp_path / "BBTP" / "bbtp_R_101_FPN_voc_aug" / "model_final.pth"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    return path


def test_a_local_folder_serves_the_names(zoo, tmp_path, monkeypatch):
    assert PathManager.get_local_path("wsis://" + NAME) == str(zoo)
    with PathManager.open("wsis://" + NAME, "rb") as f:
        assert f.read() == b"weights"
    assert PathManager.isfile("wsis://" + NAME) and PathManager.exists("wsis://" + NAME)
    monkeypatch.setenv(ENV, "file://" + str(tmp_path))
    assert PathManager.get_local_path("wsis://" + NAME) == str(zoo)


def test_a_mirror_url_is_joined_not_fetched(monkeypatch):
    monkeypatch.setenv(ENV, "https://mirror.example/wsis/")
    assert resolve("wsis://" + NAME) == "https://mirror.example/wsis/" + NAME


def test_unknown_names_fail_before_any_lookup(zoo):
    with pytest.raises(ModelZooError, match="'BBTP/nope' is not a wsis model"):
        PathManager.get_local_path("wsis://BBTP/nope/model_final.pth")


def test_a_known_name_missing_from_the_folder_says_where_it_looked(zoo):
    with pytest.raises(FileNotFoundError, match="metrics.json does not exist .*WSIS_MODEL_ZOO"):
        PathManager.get_local_path("wsis://BBTP/bbtp_R_101_FPN_voc_aug/metrics.json")
    assert not PathManager.exists("wsis://BBTP/bbtp_R_101_FPN_voc_aug/metrics.json")


def test_without_a_folder_an_unpublished_checkpoint_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(ModelZooError, match=f"no checkpoint of .* is published.*set {ENV}"):
        resolve("wsis://" + NAME)


def test_registration_is_idempotent():
    before = [m._path_handlers["wsis://"] for m in register_wsis_handler()]
    after = [m._path_handlers["wsis://"] for m in register_wsis_handler()]
    assert before == after and all(isinstance(h, WSISHandler) for h in after)


def test_a_checkpointer_loads_through_a_wsis_path(tmp_path, monkeypatch):
    torch.manual_seed(0)
    trained = torch.nn.Linear(3, 2)
    folder = tmp_path / "BBTP" / "bbtp_R_101_FPN_voc_aug"
    folder.mkdir(parents=True)
    Checkpointer(trained, save_dir=str(folder)).save("model_final")
    monkeypatch.setenv(ENV, str(tmp_path))
    fresh = torch.nn.Linear(3, 2)
    assert not torch.equal(fresh.weight, trained.weight)
    checkpointer = Checkpointer(fresh)  # fvcore's gives each checkpointer a PathManager of its own
    checkpointer.path_manager.register_handler(WSISHandler(checkpointer.path_manager))
    checkpointer.load("wsis://" + NAME)
    assert torch.equal(fresh.weight, trained.weight) and torch.equal(fresh.bias, trained.bias)
