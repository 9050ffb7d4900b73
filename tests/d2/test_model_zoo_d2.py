"""model_zoo.get / get_config with a real detectron2: trained weights come through wsis:// from the folder in
WSIS_MODEL_ZOO via detectron2's DetectionCheckpointer; untrained models keep the config's own weights."""
import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from wsis import model_zoo  # noqa: E402
from wsis.checkpoint import ENV, ModelZooError  # noqa: E402

NAME = "CAM/cam_R18_scratch_copy_paste.yaml"  # a small from-scratch model (MODEL.WEIGHTS "")


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_get_config_points_trained_weights_at_the_model_zoo():
    assert model_zoo.get_config(NAME).MODEL.WEIGHTS == ""
    assert model_zoo.get_config(NAME, trained=True).MODEL.WEIGHTS == \
        "wsis://CAM/cam_R18_scratch_copy_paste/model_final.pth"
    with pytest.raises(ModelZooError, match="not a wsis config"):
        model_zoo.get_config("CAM/nope.yaml")


def test_get_loads_the_trained_checkpoint_from_the_folder(tmp_path, monkeypatch):
    torch.manual_seed(0)
    cfg = model_zoo.get_config(NAME)
    cfg.MODEL.DEVICE = "cpu"
    trained = build_model(cfg)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)  # weights no fresh initialisation has
    folder = tmp_path / "CAM" / "cam_R18_scratch_copy_paste"
    folder.mkdir(parents=True)
    DetectionCheckpointer(trained, save_dir=str(folder)).save("model_final")
    monkeypatch.setenv(ENV, str(tmp_path))
    model = model_zoo.get(NAME, trained=True, device="cpu")
    want, got = _params(trained), _params(model)
    assert set(want) == set(got) and all(torch.equal(want[k], got[k]) for k in want)
    untrained = _params(model_zoo.get(NAME, device="cpu"))
    assert not torch.equal(untrained["head.classifier.weight"], want["head.classifier.weight"])


def test_a_missing_trained_checkpoint_fails_with_the_path(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cam_R18_scratch_copy_paste/model_final.pth does not exist"):
        model_zoo.get(NAME, trained=True, device="cpu")
