"""With a real detectron2: the CAM classifier's backbone (a plain ResNet-18 to res3) exported by
tools/export_backbone.py initialises CCGR's segmentation branch (ResNet-18 FPN) through MODEL.WEIGHTS: stem, res2
and res3 arrive unchanged (BatchNorm statistics included) in the FPN's bottom-up path, and the rest keeps its
initialisation."""
import os

import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

import wsis.modeling  # noqa: E402,F401
from wsis.checkpoint import KEY, read_description  # noqa: E402
from wsis.checkpoint.description import training_description  # noqa: E402
from wsis.cli.export_backbone import main as export_main  # noqa: E402
from wsis.config import add_wsis_config  # noqa: E402

from conftest import REPO  # noqa: E402

CAM = os.path.join(REPO, "projects", "CAM", "configs", "cam_R18_scratch_copy_paste.yaml")
SS = os.path.join(REPO, "projects", "CCGR", "configs", "semantic_psp_R18_cam_copy_paste.yaml")


def _model(config, opts=()):
    cfg = add_wsis_config(get_cfg())
    cfg.merge_from_file(config)
    cfg.merge_from_list(list(opts))
    torch.manual_seed(0)
    return cfg, build_model(cfg)


def test_cam_backbone_initialises_the_fpn_segmentation_branch(tmp_path):
    cam_cfg, cam = _model(CAM)
    with torch.no_grad():  # trained-looking statistics, so a BatchNorm buffer left behind would show
        for name, buf in cam.named_buffers():
            if name.endswith("running_mean"):
                buf.uniform_(-1, 1)
    src, dst = tmp_path / "model_final.pth", tmp_path / "backbone.pkl"
    torch.save({"model": cam.state_dict(), KEY: training_description(cam_cfg)}, src)
    assert export_main([str(src), str(dst)]) == 0

    cfg, fresh = _model(SS)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    _, ss = _model(SS)
    DetectionCheckpointer(ss).load(str(dst))
    after, source = ss.state_dict(), cam.state_dict()
    loaded = [k for k in after if k.startswith(("backbone.bottom_up.stem.", "backbone.bottom_up.res2.",
                                                "backbone.bottom_up.res3."))
              and not k.endswith("num_batches_tracked")]
    assert len(loaded) > 40
    for k in loaded:
        assert torch.equal(after[k], source[k.replace("bottom_up.", "")]), k
    for k in ("backbone.bottom_up.res4.0.conv1.weight", "backbone.fpn_lateral3.weight",
              "sem_seg_head.predictor.weight"):  # not in the classifier: as initialised
        assert torch.equal(after[k], before[k]), k
    # a segmentation branch trained from these weights says where they came from
    cfg.defrost()
    cfg.MODEL.WEIGHTS = str(dst)
    init = training_description(cfg)["init_weights"]
    assert init["description"] == read_description(str(src)) and init["description"]["meta_architecture"] == \
        cam_cfg.MODEL.META_ARCHITECTURE
