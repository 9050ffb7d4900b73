"""Load COCO-style instance annotations into Detectron2's dataset-dict format, with weak supervision.

Detectron2-free: the glue in :mod:`wsis.data.datasets` wraps these functions in ``DatasetCatalog``.

Every dict produced here follows Detectron2's standard format plus a few wsis keys::

    {"file_name": str, "image_id": int, "height": int, "width": int,
     "supervision": "mask" | "box" | "tag",        # strongest label kind present in this image
     "image_labels": [int, ...],                    # sorted contiguous class ids present (non-crowd)
     "annotations": [{"id": int, "bbox": [x, y, w, h], "bbox_mode": 1 (XYWH_ABS),
                      "category_id": int (contiguous), "iscrowd": 0 | 1,
                      "segmentation": polygons | RLE  (only when a mask is given),
                      "mask_valid": bool}]}         # True iff "segmentation" is a real/valid mask

Tag-only images have ``"annotations": []``; their ``image_labels`` come from the json's optional per-image field
``"image_labels"`` (COCO category ids), written by :func:`wsis.data.weak.export_coco_json`, or else from the
annotations that were dropped.
"""
import json
import logging
import os
from collections import Counter

logger = logging.getLogger(__name__)

BOX_MODE_XYWH_ABS = 1  # detectron2.structures.BoxMode.XYWH_ABS
SUPERVISION_KINDS = ("mask", "box", "tag")


class AnnotationError(ValueError):
    """A source annotation file is inconsistent; the message names the file and the offending id."""


def read_json(path):
    """Read a json file, raising :class:`AnnotationError` that names the file when it is missing or malformed."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise AnnotationError(f"{path}: malformed json ({e})") from None


def _check_box(ann, img, json_file):
    """Return the box clipped to the image, or a reason string when it cannot be used."""
    bbox = ann.get("bbox")
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
        return None, "has no valid 'bbox' [x, y, w, h]"
    x, y, w, h = (float(v) for v in bbox)
    if not (w > 0 and h > 0):
        return None, f"has a box of zero area {bbox}"
    x0, y0 = max(x, 0.0), max(y, 0.0)
    x1, y1 = min(x + w, float(img["width"])), min(y + h, float(img["height"]))
    if x1 - x0 <= 0 or y1 - y0 <= 0:
        return None, f"has a box {bbox} outside the {img['width']}x{img['height']} image"
    return [x0, y0, x1 - x0, y1 - y0], None


def load_coco_instances(json_file, image_root, supervision="mask", on_bad="warn", check_images=False):
    """
    Load a COCO instances json as Detectron2 dataset dicts.

    Args:
        json_file (str): COCO instances json.
        image_root (str): folder that ``file_name`` of each image is relative to.
        supervision (str): "mask" keeps polygons/RLE; "box" drops masks; "tag" drops boxes too and keeps image tags.
        on_bad (str): what to do with an unusable box (zero area, outside the image) or a missing image file when
            ``check_images``: "error" raises :class:`AnnotationError`; "warn" skips it and logs one summary with
            counts and the first ids. Structural problems (malformed json, annotation of an unknown image id,
            unknown category, duplicate ids) always raise.
        check_images (bool): check that every image file exists.

    Returns:
        (list[dict], dict): dataset dicts sorted by image id, and metadata with ``thing_classes``,
        ``thing_dataset_id_to_contiguous_id``, ``json_file``, ``image_root``, and ``bad`` (a Counter of skips).
    """
    if supervision not in SUPERVISION_KINDS:
        raise ValueError(f"supervision must be one of {SUPERVISION_KINDS}, got {supervision!r}")
    if on_bad not in ("error", "warn"):
        raise ValueError(f"on_bad must be 'error' or 'warn', got {on_bad!r}")
    data = read_json(json_file)
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            raise AnnotationError(f"{json_file}: no '{key}' list; is this a COCO instances json?")
    cats = sorted(data["categories"], key=lambda c: c["id"])
    id_map = {c["id"]: i for i, c in enumerate(cats)}
    meta = {
        "thing_classes": [c["name"] for c in cats],
        "thing_dataset_id_to_contiguous_id": id_map,
        "json_file": json_file,
        "image_root": image_root,
    }

    images = {}
    for img in data["images"]:
        if img["id"] in images:
            raise AnnotationError(f"{json_file}: duplicate image id {img['id']}")
        for key in ("file_name", "height", "width"):
            if key not in img:
                raise AnnotationError(f"{json_file}: image id {img['id']} has no '{key}'")
        images[img["id"]] = img

    bad = Counter()
    bad_examples = []

    def report(kind, msg):
        if on_bad == "error":
            raise AnnotationError(f"{json_file}: {msg}")
        bad[kind] += 1
        if len(bad_examples) < 5:
            bad_examples.append(msg)

    anns_per_image = {i: [] for i in images}
    seen_ann_ids = set()
    for ann in data.get("annotations", []):
        aid = ann.get("id")
        if aid in seen_ann_ids:
            raise AnnotationError(f"{json_file}: duplicate annotation id {aid}")
        seen_ann_ids.add(aid)
        if ann.get("image_id") not in images:
            raise AnnotationError(f"{json_file}: annotation id {aid} refers to unknown image id {ann.get('image_id')}")
        if ann.get("category_id") not in id_map:
            raise AnnotationError(
                f"{json_file}: annotation id {aid} (image id {ann['image_id']}) has unknown category id "
                f"{ann.get('category_id')}"
            )
        img = images[ann["image_id"]]
        box, reason = _check_box(ann, img, json_file)
        if reason is not None:
            report("bad_box", f"annotation id {aid} (image id {img['id']}, {img['file_name']}) {reason}")
            continue
        anns_per_image[img["id"]].append((ann, box))

    dicts = []
    for image_id in sorted(images):
        img = images[image_id]
        file_name = os.path.join(image_root, img["file_name"])
        if check_images and not os.path.isfile(file_name):
            report("missing_image", f"image id {image_id}: file {file_name} does not exist")
            continue
        objs = []
        for ann, box in anns_per_image[image_id]:
            obj = {
                "id": ann["id"],
                "bbox": box,
                "bbox_mode": BOX_MODE_XYWH_ABS,
                "category_id": id_map[ann["category_id"]],
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
            segm = ann.get("segmentation")
            if supervision == "mask" and segm:
                if isinstance(segm, list):
                    segm = [p for p in segm if len(p) % 2 == 0 and len(p) >= 6]
                    if not segm:  # keep the box, give no mask loss
                        report("bad_mask", f"annotation id {ann['id']} (image id {image_id}) has no valid polygon")
                if segm:
                    obj["segmentation"] = segm
            obj["mask_valid"] = "segmentation" in obj
            objs.append(obj)
        if "image_labels" in img:
            unknown = [c for c in img["image_labels"] if c not in id_map]
            if unknown:
                raise AnnotationError(f"{json_file}: image id {image_id} has unknown image_labels {unknown}")
            labels = sorted({id_map[c] for c in img["image_labels"]})
        else:
            labels = sorted({o["category_id"] for o in objs if not o["iscrowd"]})
        if supervision == "tag":
            objs = []
        kind = supervision if supervision != "mask" or any(o["mask_valid"] for o in objs) or not objs else "box"
        dicts.append(
            {
                "file_name": file_name,
                "image_id": image_id,
                "height": int(img["height"]),
                "width": int(img["width"]),
                "supervision": kind,
                "image_labels": labels,
                "annotations": objs,
            }
        )
    if bad:
        logger.warning(
            "%s: skipped %s. First: %s", json_file, ", ".join(f"{n} {k}" for k, n in sorted(bad.items())),
            "; ".join(bad_examples),
        )
    meta["bad"] = bad
    return dicts, meta
