import numpy as np
import pytest

from wsis.data.pseudo_store import decode_mask
from wsis.core.merge import paint_smallest_last
from wsis.pseudo import BoxFillGenerator, build_generator
from wsis.core.boxes import pixel_extent


def test_paint_smallest_last_nested_and_ties():
    m = np.zeros((3, 6, 6), dtype=bool)
    m[0, :, :] = True  # big
    m[1, 1:4, 1:4] = True  # 9 px, nested in 0
    m[2, 2:5, 2:5] = True  # 9 px, ties with 1: the later one wins
    out = paint_smallest_last(m)
    assert out.sum(0).max() == 1, "disjoint"
    assert np.all(out <= m), "each output is a subset of its input"
    assert out[2, 2:5, 2:5].all()
    assert out[1].sum() == 9 - 4 and out[0].sum() == 36 - 5 - 9
    # explicit areas (e.g. box areas) decide the order, not mask areas
    out2 = paint_smallest_last(m, areas=[1, 50, 60])
    assert out2[0].sum() == 36


def test_paint_smallest_last_empty_and_bad():
    assert paint_smallest_last(np.zeros((0, 4, 5), dtype=bool)).shape == (0, 4, 5)
    out = paint_smallest_last(np.zeros((2, 3, 3), dtype=bool))
    assert not out.any()
    with pytest.raises(ValueError):
        paint_smallest_last(np.zeros((3, 3), dtype=bool))
    with pytest.raises(ValueError):
        paint_smallest_last(np.zeros((2, 3, 3), dtype=bool), areas=[1, 2, 3])


def test_pixel_extent():
    assert pixel_extent([1.4, 2.6, 4.4, 3.6], 10, 10) == (1, 3, 4, 4)
    assert pixel_extent([9.8, 0, 9.9, 0.1], 10, 10) == (9, 0, 10, 1)  # at least one pixel, in the image
    assert pixel_extent([-5, -5, 95, 95], 10, 8) == (0, 0, 8, 10)


def _dict(anns, h=8, w=10):
    return {"image_id": 3, "height": h, "width": w, "file_name": "x.jpg", "annotations": anns}


def test_box_fill_record():
    anns = [
        {"id": 11, "bbox": [0, 0, 6, 6], "category_id": 2, "iscrowd": 0},
        {"id": 12, "bbox": [4, 4, 4, 3], "category_id": 0, "iscrowd": 0},
        {"id": 13, "bbox": [0, 0, 2, 2], "category_id": 0, "iscrowd": 1},
    ]
    rec = BoxFillGenerator()(_dict(anns))
    assert [i["annotation_id"] for i in rec["instances"]] == [11, 12], "crowds get no pseudo mask"
    m0, m1 = (decode_mask(i["segmentation"]) for i in rec["instances"])
    assert m0.sum() == 36 and m1.sum() == 12 and (m0 & m1).sum() == 4
    assert all(i["valid"] and i["score"] == 1.0 for i in rec["instances"])
    rec2 = build_generator("boxfill", overlap="smallest")(_dict(anns))
    n0, n1 = (decode_mask(i["segmentation"]) for i in rec2["instances"])
    assert n1.sum() == 12 and n0.sum() == 32 and not (n0 & n1).any()


def test_box_fill_empty_image_and_bad_params():
    rec = BoxFillGenerator()(_dict([]))
    assert rec["instances"] == [] and rec["image_id"] == 3
    with pytest.raises(ValueError):
        BoxFillGenerator(overlap="largest")
    with pytest.raises(KeyError, match="unknown pseudo-mask method"):
        build_generator("magic")


def test_box_fill_honours_bbox_mode():
    xywh = [{"id": 11, "bbox": [0, 0, 6, 6], "category_id": 2, "iscrowd": 0},
            {"id": 12, "bbox": [4, 4, 4, 3], "category_id": 0, "iscrowd": 0}]
    xyxy = [dict(a, bbox=[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]],
                 bbox_mode=0) for a in xywh]
    for overlap in ("keep", "smallest"):
        assert BoxFillGenerator(overlap)(_dict(xyxy)) == BoxFillGenerator(overlap)(_dict(xywh))
