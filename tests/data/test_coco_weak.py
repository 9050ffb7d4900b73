import json

import pytest

from wsis.data.coco_weak import AnnotationError, load_coco_instances
from wsis.data.weak import derive_weak_dataset, export_coco_json, keep_masks_on_fraction, to_tag_supervision

from conftest import write_coco


def test_load_mask_box_tag(tiny_coco):
    json_file, root = tiny_coco
    dicts, meta = load_coco_instances(json_file, root)
    assert [d["image_id"] for d in dicts] == [7, 9]
    assert meta["thing_classes"] == ["cat", "dog"]
    assert meta["thing_dataset_id_to_contiguous_id"] == {1: 0, 3: 1}
    a = dicts[0]["annotations"]
    assert [x["id"] for x in a] == [1, 2, 3]
    assert [x["category_id"] for x in a] == [0, 1, 1]
    assert [x["mask_valid"] for x in a] == [True, True, True]
    assert dicts[0]["supervision"] == "mask" and dicts[0]["image_labels"] == [0, 1]
    # the box-only instance of image 9 has no mask
    assert dicts[1]["annotations"][0]["mask_valid"] is False and dicts[1]["supervision"] == "box"

    box, _ = load_coco_instances(json_file, root, supervision="box")
    assert all("segmentation" not in x and not x["mask_valid"] for d in box for x in d["annotations"])
    tag, _ = load_coco_instances(json_file, root, supervision="tag")
    assert all(d["annotations"] == [] and d["supervision"] == "tag" for d in tag)
    assert [d["image_labels"] for d in tag] == [[0, 1], [0]]


def test_box_clipped_to_image(tmp_path):
    imgs = [{"id": 1, "file_name": "x.jpg", "height": 10, "width": 10}]
    anns = [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [-2, 3, 6, 20], "iscrowd": 0}]
    dicts, _ = load_coco_instances(write_coco(tmp_path / "a.json", imgs, anns), str(tmp_path))
    assert dicts[0]["annotations"][0]["bbox"] == [0.0, 3.0, 4.0, 7.0]


@pytest.mark.parametrize("bbox,what", [([1, 1, 0, 5], "zero area"), ([20, 20, 5, 5], "outside")])
def test_bad_boxes_error_or_skip(tmp_path, bbox, what, caplog):
    imgs = [{"id": 1, "file_name": "x.jpg", "height": 10, "width": 10}]
    anns = [{"id": 5, "image_id": 1, "category_id": 1, "bbox": bbox, "iscrowd": 0},
            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "iscrowd": 0}]
    path = write_coco(tmp_path / "a.json", imgs, anns)
    with pytest.raises(AnnotationError, match=r"a\.json.*annotation id 5 \(image id 1") as e:
        load_coco_instances(path, str(tmp_path), on_bad="error")
    assert what in str(e.value)
    dicts, meta = load_coco_instances(path, str(tmp_path), on_bad="warn")
    assert [a["id"] for a in dicts[0]["annotations"]] == [6]
    assert meta["bad"]["bad_box"] == 1
    assert "annotation id 5" in caplog.text


def test_structural_errors_name_file_and_id(tmp_path):
    imgs = [{"id": 1, "file_name": "x.jpg", "height": 10, "width": 10}]
    with pytest.raises(AnnotationError, match="annotation id 5 refers to unknown image id 2"):
        load_coco_instances(write_coco(tmp_path / "a.json", imgs, [
            {"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]}]), "")
    with pytest.raises(AnnotationError, match="annotation id 5 .*unknown category id 42"):
        load_coco_instances(write_coco(tmp_path / "b.json", imgs, [
            {"id": 5, "image_id": 1, "category_id": 42, "bbox": [1, 1, 2, 2]}]), "")
    with pytest.raises(AnnotationError, match="duplicate annotation id 5"):
        load_coco_instances(write_coco(tmp_path / "c.json", imgs, [
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]}]), "")
    bad = tmp_path / "d.json"
    bad.write_text('{"images": [')
    with pytest.raises(AnnotationError, match=r"d\.json: malformed json"):
        load_coco_instances(str(bad), "")
    with pytest.raises(AnnotationError, match="not found"):
        load_coco_instances(str(tmp_path / "missing.json"), "")


def test_missing_image_file(tiny_coco, tmp_path):
    json_file, root = tiny_coco
    (tmp_path / "images" / "b.jpg").unlink()
    with pytest.raises(AnnotationError, match="image id 9: file .*b.jpg does not exist"):
        load_coco_instances(json_file, root, check_images=True, on_bad="error")
    dicts, meta = load_coco_instances(json_file, root, check_images=True)
    assert [d["image_id"] for d in dicts] == [7] and meta["bad"]["missing_image"] == 1


def test_semi_supervised_is_seeded_and_order_independent(tiny_coco):
    json_file, root = tiny_coco
    dicts, _ = load_coco_instances(json_file, root)
    many = []
    for i in range(20):  # 20 images with 2 masked instances each
        d = dict(dicts[0], image_id=100 + i)
        d["annotations"] = [dict(a, id=1000 + 10 * i + k) for k, a in enumerate(dicts[0]["annotations"][:2])]
        many.append(d)
    a = keep_masks_on_fraction(many, 0.25, seed=3)
    b = keep_masks_on_fraction(list(reversed(many)), 0.25, seed=3)
    kept_a = {d["image_id"] for d in a if d["supervision"] == "mask"}
    kept_b = {d["image_id"] for d in b if d["supervision"] == "mask"}
    assert kept_a == kept_b and len(kept_a) == 5
    assert kept_a != {d["image_id"] for d in keep_masks_on_fraction(many, 0.25, seed=4) if d["supervision"] == "mask"}
    inst = keep_masks_on_fraction(many, 0.5, seed=0, per="instance")
    assert sum(x["mask_valid"] for d in inst for x in d["annotations"]) == 20
    # input untouched
    assert all(x["mask_valid"] for d in many for x in d["annotations"])
    with pytest.raises(ValueError):
        keep_masks_on_fraction(many, 1.5)
    with pytest.raises(ValueError, match="unknown weak mode"):
        derive_weak_dataset(many, "pixels")


def test_export_round_trip(tiny_coco, tmp_path):
    json_file, root = tiny_coco
    dicts, meta = load_coco_instances(json_file, root)
    tags = to_tag_supervision(dicts)
    out = tmp_path / "tag.json"
    export_coco_json(tags, meta, str(out))
    reloaded, _ = load_coco_instances(str(out), root, supervision="tag")
    assert [d["image_labels"] for d in reloaded] == [[0, 1], [0]]
    assert json.load(open(out))["images"][0]["image_labels"] == [1, 3]

    box = derive_weak_dataset(dicts, "box")
    export_coco_json(box, meta, str(tmp_path / "box.json"))
    again, _ = load_coco_instances(str(tmp_path / "box.json"), root)
    assert [a["bbox"] for d in again for a in d["annotations"]] == [a["bbox"] for d in box for a in d["annotations"]]
    assert not any(a["mask_valid"] for d in again for a in d["annotations"])
    assert [d["file_name"] for d in again] == [d["file_name"] for d in dicts]


def test_real_coco_tiny(coco_tiny):
    dicts, meta = load_coco_instances(*coco_tiny, check_images=True)
    assert len(dicts) == 80 and len(meta["thing_classes"]) == 80
    assert sum(len(d["annotations"]) for d in dicts) == 815
    assert sum(a["iscrowd"] for d in dicts for a in d["annotations"]) == 11
