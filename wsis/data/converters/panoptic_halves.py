"""
A COCO panoptic set (official format) → a *things + stuff* instance set in disjoint parts ("train" / "val" halves),
so that an image-tag pipeline (CAM classifier → cues → DSRG semantic head) trains on one part and is evaluated on
the other, over all the panoptic categories (COCO: 80 things + 53 stuff = 133).

Rules (tested in ``tests/data/converters/test_panoptic_halves.py``):

- **Split**: the images sorted by id are cut into ``len(splits)`` contiguous parts whose sizes differ by at most one,
  earlier parts larger (``numpy.array_split``): 100 images → ids 1-50 of the sorted list "train", 51-100 "val".
- **Annotations**: one per panoptic segment, crowd included: the exact pixels of its id in the PNG (id = R + 256 G +
  65536 B) as RLE with str counts, the tight box and pixel area of those pixels, ``iscrowd`` of the segment, the
  segment's ``segment_id``. Annotation ids run from 1 in (image id, ``segments_info``) order within each part.
- **Categories**: the json's own entries (ids, order, ``isthing``) in every part, so a stuff class is one more class.
- **Tags**: each image's ``image_labels`` = the sorted COCO category ids of its non-crowd segments (things and stuff;
  what :func:`wsis.data.coco_weak.load_coco_instances` turns into contiguous tags).
- **Semantic maps** (:func:`wsis.data.semantic_labels.semantic_from_panoptic`): uint8, contiguous category ``c`` →
  ``c + 1`` with ``c`` in category-id order (the loader's contiguous ids; COCO's json order), 0 never occurs, void
  (id 0, or an id no segment lists) and crowd segments → 255.
- **Images** are symbolic links to the source files (absolute paths), never copies.
- Bad input (an image without panoptic annotation, a missing PNG or image, a PNG of another size, a segment id
  absent from its PNG, an unknown category, duplicate ids) raises :class:`ConversionError` (or the loader's
  ``AnnotationError`` for a missing / malformed json): one line naming the file and image id.

Outputs under ``out`` (every file written atomically; ``params.json`` last, so its presence marks a complete set)::

    annotations/instances_<split>.json    <split>/<file_name> (links)    semantic/<split>/<image_id>.png
    params.json                            (the settings: input paths, json sha256, splits; the counts)

Running again with the same settings does nothing; other settings are refused unless ``overwrite``; an incomplete
output (a killed run) is built again. Only a folder holding nothing but these outputs is ever cleared.
"""
import os
import shutil
from collections import Counter

import numpy as np
from PIL import Image
from tqdm import tqdm

from wsis.core.io import atomic_symlink, atomic_write_json, sha256_file
from wsis.core.panoptic import panoptic_rgb_to_id
from wsis.core.semantic import IGNORE_LABEL, write_label_png
from wsis.data.coco_weak import read_json
from wsis.data.semantic_labels import semantic_from_panoptic

from .voc_sbd import ConversionError, coco_mask_fields

__all__ = ["PANOPTIC_SPLITS", "split_image_ids", "panoptic_annotations", "convert_panoptic_halves"]

PANOPTIC_SPLITS = ("train", "val")
_PARAMS = "params.json"


def split_image_ids(image_ids, splits=PANOPTIC_SPLITS):
    """``{split: [ids]}``: the sorted ``image_ids`` cut into contiguous parts in ``splits`` order (sizes differ by at
    most one, earlier parts larger)."""
    parts = np.array_split(np.asarray(sorted(image_ids), dtype=np.int64), len(splits))
    return {s: [int(i) for i in p] for s, p in zip(splits, parts)}


def panoptic_annotations(ids, segments_info, png_path, image_id):
    """
    The COCO instance annotations of one panoptic image.

    Args:
        ids (ndarray): (H, W) int segment ids (:func:`wsis.core.panoptic.panoptic_rgb_to_id` of the PNG).
        segments_info (list[dict]): ``{"id", "category_id", "iscrowd"}`` per segment.
        png_path (str), image_id (int): named in errors.

    Returns:
        list[dict]: per segment ``segment_id``, ``category_id``, ``segmentation`` (RLE, str counts), ``area``,
        ``bbox`` (tight XYWH of its pixels), ``iscrowd``; no ``id`` / ``image_id`` yet.

    Raises:
        ConversionError: a segment id absent from the PNG.
    """
    out = []
    for s in segments_info:
        rle, area, bbox = coco_mask_fields(ids == s["id"])
        if area == 0:
            raise ConversionError(f"{png_path}: segment id {s['id']} (category {s['category_id']}) of image id "
                                  f"{image_id} has no pixels in the PNG")
        out.append({"segment_id": int(s["id"]), "category_id": int(s["category_id"]), "segmentation": rle,
                    "area": area, "bbox": bbox, "iscrowd": int(s.get("iscrowd", 0))})
    return out


def _index(data, panoptic_json, panoptic_root, image_root):
    """Check the json and the files it names (cheap checks, before anything is written); returns
    ``({image_id: image}, {image_id: panoptic annotation}, {category id: label})``."""
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ConversionError(f"{panoptic_json}: no '{key}' list; is this a COCO panoptic json?")
    cats = data["categories"]
    cat_ids = [c.get("id") for c in cats]
    if len(set(cat_ids)) != len(cat_ids) or any("isthing" not in c for c in cats):
        raise ConversionError(f"{panoptic_json}: category ids must be unique and every category needs 'isthing'")
    if len(cats) + 1 >= IGNORE_LABEL:
        raise ConversionError(f"{panoptic_json}: {len(cats)} categories do not fit a uint8 label map")
    to_label = {c: i + 1 for i, c in enumerate(sorted(cat_ids))}
    images, pans = {}, {}
    for img in data["images"]:
        if img.get("id") in images:
            raise ConversionError(f"{panoptic_json}: duplicate image id {img.get('id')}")
        images[img.get("id")] = img
    for ann in data["annotations"]:
        image_id = ann.get("image_id")
        if image_id not in images:
            raise ConversionError(f"{panoptic_json}: panoptic annotation {ann.get('file_name')} refers to unknown "
                                  f"image id {image_id}")
        if image_id in pans:
            raise ConversionError(f"{panoptic_json}: image id {image_id} has two panoptic annotations")
        pans[image_id] = ann
    for image_id, img in images.items():
        ann = pans.get(image_id)
        if ann is None:
            raise ConversionError(f"{panoptic_json}: image id {image_id} ({img.get('file_name')}) has no panoptic "
                                  "annotation")
        png = os.path.join(panoptic_root, ann.get("file_name", ""))
        if not os.path.isfile(png):
            raise ConversionError(f"{png}: panoptic PNG of image id {image_id} not found")
        if not os.path.isfile(os.path.join(image_root, img.get("file_name", ""))):
            raise ConversionError(f"{os.path.join(image_root, img.get('file_name', ''))}: image file of image id "
                                  f"{image_id} not found")
        seen = set()
        for s in ann.get("segments_info", []):
            if s.get("category_id") not in to_label:
                raise ConversionError(f"{panoptic_json}: segment id {s.get('id')} of image id {image_id} ({png}) "
                                      f"has unknown category id {s.get('category_id')}")
            if s.get("id") in seen:
                raise ConversionError(f"{panoptic_json}: duplicate segment id {s.get('id')} in image id {image_id}")
            seen.add(s.get("id"))
    return images, pans, to_label


def _prepare_out(out, settings, overwrite, splits):
    """True when ``out`` already holds a complete set with ``settings`` (nothing to do); else clears this
    converter's outputs from ``out`` (refusing other settings without ``overwrite``, and any folder holding other
    files)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ConversionError(f"{out}: exists and is not a folder")
    if not os.path.isdir(out) or not os.listdir(out):
        return False
    params = os.path.join(out, _PARAMS)
    before = read_json(params).get("settings", {}) if os.path.isfile(params) else {}
    if before and not overwrite:
        if before == settings:
            return True
        raise ConversionError(f"{out}: holds a converted set with other settings (see {params}); pass --overwrite "
                              "(overwrite=True) to replace it")
    ours = {"annotations", "semantic", _PARAMS, *PANOPTIC_SPLITS, *splits, *before.get("splits", [])}
    foreign = sorted(e for e in os.listdir(out) if e not in ours and not e.startswith(".tmp-"))
    if foreign:
        raise ConversionError(f"{out}: holds {foreign[0]!r}, not an output of this converter; not replacing it")
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    return False


def _convert_image(img, pan, to_label, panoptic_root, image_root, out, split):
    """Write one image's link and semantic map; returns its annotations (without ids) and tags."""
    image_id = img["id"]
    png = os.path.join(panoptic_root, pan["file_name"])
    try:
        with Image.open(png) as f:
            rgb = np.asarray(f.convert("RGB"))
    except OSError as e:
        raise ConversionError(f"{png}: unreadable panoptic PNG of image id {image_id} ({e})") from None
    if rgb.shape[:2] != (img["height"], img["width"]):
        raise ConversionError(f"{png}: {rgb.shape[1]}x{rgb.shape[0]} PNG for the {img['width']}x{img['height']} "
                              f"image id {image_id}")
    ids = panoptic_rgb_to_id(rgb)
    anns = panoptic_annotations(ids, pan["segments_info"], png, image_id)
    write_label_png(semantic_from_panoptic(ids, pan["segments_info"], to_label),
                    os.path.join(out, "semantic", split, f"{image_id}.png"))
    atomic_symlink(os.path.abspath(os.path.join(image_root, img["file_name"])),
                   os.path.join(out, split, img["file_name"]))
    return anns, sorted({a["category_id"] for a in anns if not a["iscrowd"]})


def convert_panoptic_halves(panoptic_json, panoptic_root, image_root, out, splits=PANOPTIC_SPLITS, overwrite=False,
                            progress=True):
    """
    Convert a COCO panoptic set into disjoint instance parts (module docstring).

    Args:
        panoptic_json (str): the panoptic json. panoptic_root (str): folder of its PNGs. image_root (str): images.
        out (str): output folder. splits (tuple[str]): part names, in sorted-image-id order (default train, val).
        overwrite (bool): replace a set converted with other settings.

    Returns:
        dict: ``settings``, ``summary`` (the category counts; per split: images, their first and last id,
        annotations of things / stuff / crowd, categories among the tags), ``written`` (False when ``out`` already held
        this set: nothing was touched).

    Raises:
        ConversionError / AnnotationError (``ValueError``): one line naming the file and image id.
    """
    splits = tuple(splits)
    if not splits or len(set(splits)) != len(splits) or any(s in ("annotations", "semantic", _PARAMS) or
                                                            not s or os.sep in s for s in splits):
        raise ConversionError(f"splits must be distinct plain folder names, got {splits}")
    data = read_json(panoptic_json)
    images, pans, to_label = _index(data, panoptic_json, panoptic_root, image_root)
    settings = {"panoptic_json": os.path.abspath(panoptic_json), "json_sha256": sha256_file(panoptic_json),
                "panoptic_root": os.path.abspath(panoptic_root), "image_root": os.path.abspath(image_root),
                "splits": list(splits)}
    if _prepare_out(out, settings, overwrite, splits):
        return dict(read_json(os.path.join(out, _PARAMS)), written=False)
    isthing = {c["id"]: bool(c["isthing"]) for c in data["categories"]}
    summary = {"categories": len(isthing), "thing_categories": sum(isthing.values()),
               "stuff_categories": len(isthing) - sum(isthing.values()), "splits": {}}
    for split, image_ids in split_image_ids(images, splits).items():
        coco_images, annotations = [], []
        for image_id in tqdm(image_ids, desc=f"panoptic → {split}", unit="img", disable=not progress):
            anns, labels = _convert_image(images[image_id], pans[image_id], to_label, panoptic_root, image_root,
                                          out, split)
            annotations += [dict(a, id=len(annotations) + k + 1, image_id=image_id) for k, a in enumerate(anns)]
            coco_images.append(dict(images[image_id], image_labels=labels))
        kinds = Counter("crowd" if a["iscrowd"] else "thing" if isthing[a["category_id"]] else "stuff"
                        for a in annotations)
        present = {c for img in coco_images for c in img["image_labels"]}
        summary["splits"][split] = {
            "images": len(coco_images), "image_id_range": [image_ids[0], image_ids[-1]] if image_ids else [],
            "annotations": len(annotations), **{f"{k}_annotations": kinds[k] for k in ("thing", "stuff", "crowd")},
            "thing_categories_present": sum(isthing[c] for c in present),
            "stuff_categories_present": sum(not isthing[c] for c in present)}
        coco = {"info": {"description": f"part '{split}' (images by sorted id) of {settings['panoptic_json']}: every "
                                        "panoptic segment, things and stuff, as an instance (wsis.data.converters."
                                        "panoptic_halves)"},
                "licenses": data.get("licenses", []), "images": coco_images, "annotations": annotations,
                "categories": data["categories"]}
        atomic_write_json(coco, os.path.join(out, "annotations", f"instances_{split}.json"), separators=(",", ":"))
    params = {"converter": "wsis.data.converters.panoptic_halves", "settings": settings, "summary": summary}
    atomic_write_json(params, os.path.join(out, _PARAMS), indent=1)
    return dict(params, written=True)
