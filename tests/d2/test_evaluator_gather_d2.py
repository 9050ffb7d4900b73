"""The evaluators' figures under detectron2's ``launch`` with 2 CPU processes (gloo) equal the 1-process figures, on
every rank: AP^r on coco_tiny, PQ and the segments' AP^r on coco_panoptic_val100, BoxCaseg's proxy-mask quality."""
import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2")

from detectron2.engine import launch  # noqa: E402

from conftest import SHARED_DATA  # noqa: E402

pytestmark = pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED_DATA, "coco_tiny")), reason="no shared data")


def _apr_inputs():
    from detectron2.data import DatasetCatalog
    from detectron2.structures import Instances

    from wsis.core.masks import to_bool_mask

    out = []
    for k, d in enumerate(DatasetCatalog.get("coco_tiny_val")[:8]):
        anns = [a for a in d["annotations"] if not a["iscrowd"]][: max(1, k % 3)]  # some instances missed
        inst = Instances((d["height"], d["width"]))
        masks = [to_bool_mask(a["segmentation"], d["height"], d["width"]) for a in anns]
        if k % 2:  # a shifted mask: lower IoU, so AP differs between thresholds
            masks = [np.roll(m, 3 + k, axis=1) for m in masks]
        inst.pred_masks = torch.from_numpy(np.stack(masks))
        inst.pred_classes = torch.tensor([a["category_id"] for a in anns], dtype=torch.long)
        inst.scores = torch.linspace(0.9, 0.5, len(anns))
        out.append(({"image_id": d["image_id"]}, {"instances": inst}))
    return out


def _pq_inputs():
    from detectron2.data import DatasetCatalog
    from PIL import Image

    from wsis.evaluation.panoptic_quality import panoptic_rgb_to_id

    out = []
    for k, d in enumerate(DatasetCatalog.get("coco_panoptic_val100")[:6]):
        ids = panoptic_rgb_to_id(np.asarray(Image.open(d["pan_seg_file_name"]).convert("RGB")))
        info = [{"id": s["id"], "category_id": s["category_id"], "isthing": s["isthing"]}
                for s in d["segments_info"] if not s.get("iscrowd", 0)]
        info = info[: len(info) - 1 - k % 2]  # one or two segments missed
        ids[~np.isin(ids, [s["id"] for s in info])] = 0
        out.append(({"image_id": d["image_id"]}, {"panoptic_seg": (torch.from_numpy(ids), info)}))
    return out


def _proxy_dataset():
    from detectron2.data import DatasetCatalog
    from pycocotools import mask as mask_utils

    records = []
    for image_id in range(4):
        gt = np.zeros((20, 20), dtype=np.uint8)
        gt[:, : 6 + 2 * image_id] = 1
        rle = mask_utils.encode(np.asfortranarray(gt))
        rle["counts"] = rle["counts"].decode()
        ann = {"id": 10 + image_id, "category_id": 0, "bbox": [0.0, 0.0, 20.0, 20.0], "bbox_mode": 1,
               "segmentation": rle, "iscrowd": 0}
        records.append({"image_id": image_id, "file_name": f"{image_id}.jpg", "height": 20, "width": 20,
                        "annotations": [ann]})
    if "gather_test_proxy" not in DatasetCatalog.list():
        DatasetCatalog.register("gather_test_proxy", lambda: records)
    ramp = torch.linspace(1.0, 0.0, 20).expand(20, 20)[None]
    return [(r, {"proxy_probs": ramp ** (1 + r["image_id"])}) for r in records]


def _evaluators():
    import wsis.data.datasets  # noqa: F401
    from wsis.methods.boxcaseg.evaluator import ProxyMaskEvaluator
    from wsis.evaluation.evaluators import InstanceAPrEvaluator, PanopticQualityEvaluator, PanopticSegmentEvaluator

    scored = [(inp, {"panoptic_seg": (ids, [dict(s, score=1.0 / (1 + j)) for j, s in enumerate(info)])})
              for inp, out in _pq_inputs() for ids, info in [out["panoptic_seg"]]]
    return [(InstanceAPrEvaluator("coco_tiny_val"), _apr_inputs()),
            (PanopticQualityEvaluator("coco_panoptic_val100"), _pq_inputs()),
            (PanopticSegmentEvaluator("coco_panoptic_val100"), scored),
            (ProxyMaskEvaluator("gather_test_proxy", sweep_thresholds=(0.2, 0.5)), _proxy_dataset())]


def _run(out_dir):
    from detectron2.utils import comm

    rank, world = comm.get_rank(), comm.get_world_size()
    results = {}
    for evaluator, inputs in _evaluators():
        evaluator.reset()
        for i, (inp, out) in enumerate(inputs):
            if i % world == rank:  # each process sees its share, as inference_on_dataset does
                evaluator.process([inp], [out])
        results.update(evaluator.evaluate())
    with open(os.path.join(out_dir, f"rank{rank}_of{world}.json"), "w") as f:
        json.dump(results, f)


def test_two_processes_give_the_one_process_figures_on_every_rank(tmp_path):
    _run(str(tmp_path))  # one process, no distributed group
    launch(_run, 2, num_machines=1, machine_rank=0, dist_url="auto", args=(str(tmp_path),))
    single = json.load(open(tmp_path / "rank0_of1.json"))
    assert set(single) == {"segm_APr", "panoptic_seg", "panoptic_segments", "proxy_masks"}
    assert 0 < single["segm_APr"]["AP^r@0.5"] < 100 and 0 < single["panoptic_seg"]["PQ"] < 100
    assert 0 < single["panoptic_segments"]["AP^r@0.5"] < 100
    for rank in (0, 1):
        multi = json.load(open(tmp_path / f"rank{rank}_of2.json"))
        assert multi.keys() == single.keys()
        for task in single:
            assert multi[task] == pytest.approx(single[task]), (rank, task)
