"""BoxCaseg's sample lists (one per box / per salient image) and the per-image proxy-mask record."""
import numpy as np
import pytest

from wsis.core.boxes import box_iou_matrix
from wsis.methods.boxcaseg.samples import box_samples, salient_mask_of, salient_samples
from wsis.data.pseudo_store import decode_mask, encode_mask
from wsis.methods.boxcaseg.proxy_masks import proxy_record


def _dict(anns, image_id=1, h=40, w=60):
    return {"file_name": f"/x/{image_id}.jpg", "image_id": image_id, "height": h, "width": w, "annotations": anns}


def test_box_iou_matrix_hand_values():
    iou = box_iou_matrix([(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 20, 30)])
    assert iou[0, 1] == pytest.approx(50 / 150) and iou[0, 0] == 1.0
    assert iou[2, 2] == 0.0 and iou[0, 2] == 0.0  # no area
    assert box_iou_matrix([]).shape == (0, 0)


def test_box_samples_one_per_usable_box():
    d = _dict([{"id": 1, "bbox": [2, 3, 10, 5], "category_id": 0},
               {"id": 2, "bbox": [0, 0, 5, 5], "category_id": 1, "iscrowd": 1},
               {"id": 3, "bbox": [4, 4, 0, 6], "category_id": 0},  # no width
               {"id": 4, "bbox": [1, 1, 11, 9], "category_id": 0, "bbox_mode": 0}])  # XYXY_ABS
    samples = box_samples([d, _dict([], image_id=2)])
    assert [s["annotation_id"] for s in samples] == [1, 4]
    assert samples[0]["box"] == (2.0, 3.0, 12.0, 8.0) and samples[1]["box"] == (1.0, 1.0, 11.0, 9.0)
    assert not any(s["salient"] for s in samples)
    with pytest.raises(ValueError, match=r"/x/1.jpg: annotation id 9: bbox_mode 2"):
        box_samples([_dict([{"id": 9, "bbox": [0, 0, 1, 1], "bbox_mode": 2}])])


def test_overlap_drop_only_touches_overlapping_boxes_and_is_seeded():
    anns = [{"id": 1, "bbox": [0, 0, 10, 10]}, {"id": 2, "bbox": [1, 0, 10, 10]}, {"id": 3, "bbox": [30, 0, 5, 5]}]
    assert [s["annotation_id"] for s in box_samples([_dict(anns)], 0.5, 1.0)] == [3]
    assert len(box_samples([_dict(anns)], 0.95, 1.0)) == 3  # IoU 0.82 is not above 0.95
    many = [_dict(anns, image_id=i) for i in range(200)]
    a, b = box_samples(many, 0.5, 0.5, seed=1), box_samples(many, 0.5, 0.5, seed=1)
    assert a == b and 200 + 100 < len(a) < 200 + 300  # about half of the 400 overlapping boxes kept


def test_salient_samples_need_a_mask():
    m = np.zeros((40, 60), dtype=bool)
    m[5:10, 5:20] = True
    d = _dict([{"id": 1, "bbox": [5, 5, 15, 5], "segmentation": encode_mask(m)}])
    (s,) = salient_samples([d])
    assert s["salient"] and (salient_mask_of({**d, "annotations": [{"segmentation": x} for x in s["mask"]]}) == m).all()
    with pytest.raises(ValueError, match=r"/x/3.jpg: image id 3 has no salient mask"):
        salient_samples([_dict([{"id": 1, "bbox": [5, 5, 15, 5]}], image_id=3)])


def test_proxy_record_pastes_merges_and_drops():
    d = {"image_id": 5, "height": 40, "width": 60}
    anns = [{"id": 1, "category_id": 0, "bbox": [0, 0, 40, 40]},     # large box
            {"id": 2, "category_id": 1, "bbox": [10, 10, 10, 10]}]   # small box inside it
    full = np.ones((8, 8), np.float32)
    full[0, 0] = 0.0  # min-max: all but a corner of the crop is foreground
    ring = np.zeros((8, 8), np.float32)
    ring[2:6, 2:6] = 1.0  # the centre half of the small box
    rec = proxy_record(d, anns, [full, ring], threshold=0.5, merge=True, drop_threshold=0.95)
    big, small = (decode_mask(i["segmentation"]) for i in rec["instances"])
    ys, xs = np.nonzero(small)
    side = xs.max() + 1 - xs.min()
    assert small.sum() == side * side and 4 <= side <= 6 and xs.min() + xs.max() + 1 == 30  # centred square
    assert not (big & small).any() and not big[:, 40:].any() and (big | small)[8:40, 8:40].all() and not big[0, 0]
    # the small mask's tight box is about a quarter of its box → dropped; the big one keeps its box
    assert rec["instances"][1]["score"] == pytest.approx(side * side / 100) and not rec["instances"][1]["valid"]
    assert rec["instances"][0]["valid"] and rec["instances"][0]["score"] > 0.95
    with pytest.raises(ValueError, match="image id 5: 2 boxes but 1 probability maps"):
        proxy_record(d, anns, [full])


def test_xyxy_boxes_give_the_xywh_result():
    """A VOC-style loader writes bbox_mode 0 (XYXY_ABS): box samples, proxy paste and the stored box honour it."""
    d = {"image_id": 5, "height": 40, "width": 60, "file_name": "x.jpg"}
    xywh = [{"id": 1, "category_id": 0, "bbox": [0, 0, 40, 40]}, {"id": 2, "category_id": 1, "bbox": [10.5, 10, 9, 12]}]
    xyxy = [dict(a, bbox=[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]],
                 bbox_mode=0) for a in xywh]
    probs = [np.random.default_rng(i).random((8, 8)).astype(np.float32) for i in range(2)]
    assert proxy_record(d, xyxy, probs) == proxy_record(d, xywh, probs)
    assert proxy_record(d, xyxy, probs)["instances"][1]["bbox"] == [10.5, 10.0, 9.0, 12.0]  # stored as XYWH
    one = lambda anns: [s["box"] for s in box_samples([dict(d, annotations=anns)])]  # noqa: E731
    assert one(xyxy) == one(xywh) == [(0.0, 0.0, 40.0, 40.0), (10.5, 10.0, 19.5, 22.0)]
    with pytest.raises(ValueError, match="x.jpg: annotation id 2: bbox_mode 2 is not supported"):
        box_samples([dict(d, annotations=[dict(xyxy[1], bbox_mode=2)])])
