"""Salient-object folders (DUTS-TR, ECSSD, ...) → Detectron2 dataset dicts or a COCO json.

BoxCaseg (Wang et al., CVPR 2021, §4 "DUTS-Single") trains its class-agnostic segmenter on salient images and keeps
only those with a single salient object, so that the mask inside a box belongs to one object. The paper gives no
numbers for that filter; this module implements it as follows (the defaults reproduce ECSSD's documented count of
927 single-object images out of 1000):

1. Binarise: a mask read as 8-bit grey is foreground where ``value >= threshold`` (default 128, the midpoint of
   0..255, so anti-aliased or soft masks split at 50 %). A mask whose maximum is 1 is taken as a 0/1 label map.
2. Connected components of the foreground, 8-connected (a diagonal touch joins two regions).
3. A component is an *object* if its area is at least ``min_area_fraction`` (default 0.01) of the image area; smaller
   ones are specks (annotation noise, small detached parts) and are ignored. The largest component always counts,
   so any non-empty mask has at least one object.
4. ``num_objects`` is the number of objects; ``single_object_only`` keeps images with exactly one.

Each record's annotation covers the objects only (specks removed), both its RLE and its tight XYWH box; with
``per_component=True`` there is one annotation per object instead of one for their union. ``sem_seg_file_name``
still points at the raw mask file.

Images and masks are paired by file stem (extensions ``.jpg``, ``.jpeg``, ``.png``, any case). ``image_id`` is
``int(stem)`` when every stem is a decimal number (``0001`` → 1), otherwise the 0-based index in sorted stem order.
Records are sorted by image id (numeric stems) or stem; annotation ids run from 1 in that order. Image sizes are read
from the file header (EXIF orientation is not applied, as the masks are stored in the same raw orientation).
"""
import logging
import os

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from wsis.core.io import atomic_write_json

from .voc_sbd import ConversionError, coco_mask_fields

__all__ = [
    "SALIENT_EXTENSIONS",
    "binarize_salient_mask",
    "salient_objects",
    "count_salient_objects",
    "load_salient_folder",
    "salient_folder_to_coco",
]

logger = logging.getLogger(__name__)

SALIENT_EXTENSIONS = (".jpg", ".jpeg", ".png")


def binarize_salient_mask(mask, threshold=128):
    """H×W uint8 mask (0..255, or 0/1) → H×W bool foreground (see the module docstring, step 1)."""
    mask = np.asarray(mask)
    if mask.size and mask.max() <= 1:
        return mask > 0
    return mask >= threshold


def salient_objects(binary, min_area_fraction=0.01, connectivity=8):
    """Split a binary mask into objects (steps 2-3 of the module docstring).

    Returns:
        list of H×W bool masks, one per object, by decreasing area (ties: raster order of the first pixel).
    """
    binary = np.ascontiguousarray(binary, dtype=np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=connectivity)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if n <= 1:
        return []
    order = sorted(range(1, n), key=lambda k: -int(areas[k - 1]))  # stable: labels are in raster order
    min_area = min_area_fraction * binary.size
    keep = [k for i, k in enumerate(order) if i == 0 or areas[k - 1] >= min_area]
    return [labels == k for k in keep]


def count_salient_objects(mask, threshold=128, min_area_fraction=0.01, connectivity=8):
    """Number of salient objects in a raw mask (the DUTS-Single rule of the module docstring)."""
    return len(salient_objects(binarize_salient_mask(mask, threshold), min_area_fraction, connectivity))


def _index_folder(folder, kind):
    if not os.path.isdir(folder):
        raise ConversionError(f"{kind} directory {folder} does not exist.")
    found = {}
    for f in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(f)
        if ext.lower() not in SALIENT_EXTENSIONS:
            continue
        if stem in found:
            raise ConversionError(f"Two {kind.lower()} files share stem {stem!r}: {found[stem]} and {f} in {folder}.")
        found[stem] = f
    return {s: os.path.abspath(os.path.join(folder, f)) for s, f in found.items()}


def _pair(image_dir, mask_dir, skip_missing):
    images, masks = _index_folder(image_dir, "Image"), _index_folder(mask_dir, "Mask")
    unpaired = [f"mask {masks[s]} has no image in {image_dir}" for s in sorted(set(masks) - set(images))]
    unpaired += [f"image {images[s]} has no mask in {mask_dir}" for s in sorted(set(images) - set(masks))]
    if unpaired and not skip_missing:
        more = f" (and {len(unpaired) - 1} more unpaired files)" if len(unpaired) > 1 else ""
        raise ConversionError(unpaired[0] + more)
    if unpaired:
        logger.warning("Skipping %d unpaired file(s), e.g. %s.", len(unpaired), unpaired[0])
    stems = sorted(set(images) & set(masks))
    numeric = bool(stems) and all(s.isdigit() for s in stems)
    if numeric:
        stems.sort(key=lambda s: (int(s), s))
        ids = [int(s) for s in stems]
        if len(set(ids)) != len(ids):  # "01" and "1"
            numeric, stems = False, sorted(stems)
    if not numeric:
        ids = list(range(len(stems)))
    return [(i, images[s], masks[s]) for i, s in zip(ids, stems)]


def _read_mask(path):
    try:
        with Image.open(path) as m:
            return np.asarray(m.convert("L"))
    except Exception as e:
        raise ConversionError(f"Cannot read mask {path}: {e}") from e


def _image_size(path):
    try:
        with Image.open(path) as img:  # reads the header only
            return img.size
    except Exception as e:
        raise ConversionError(f"Cannot read image {path}: {e}") from e


def load_salient_folder(
    image_dir,
    mask_dir,
    single_object_only=False,
    threshold=128,
    min_area_fraction=0.01,
    per_component=False,
    skip_missing=False,
    image_ids=None,
    index_range=None,
    progress=False,
):
    """Detectron2-style dataset dicts of a salient-object folder (rules in the module docstring).

    Args:
        image_ids: optional collection of image ids to keep.
        index_range: optional ``(start, stop)`` slice of the sorted image list, applied before ``image_ids`` and
            ``single_object_only``.
        skip_missing: leave out (with one warning) images without a mask and masks without an image instead of
            raising :class:`ConversionError`.

    Returns:
        list of dicts with ``file_name``, ``image_id``, ``height``, ``width``, ``sem_seg_file_name``, ``num_objects``
        and ``annotations`` (``bbox`` XYWH, ``bbox_mode`` 1 = ``BoxMode.XYWH_ABS``, ``category_id`` 0, RLE
        ``segmentation`` with str counts, ``iscrowd`` 0, ``area``, ``id`` running from 1 over the returned list).
    """
    pairs = _pair(image_dir, mask_dir, skip_missing)
    if index_range is not None:
        pairs = pairs[slice(*index_range)]
    if image_ids is not None:
        wanted = set(int(i) for i in image_ids)
        pairs = [p for p in pairs if p[0] in wanted]
    records, next_id = [], 1
    for image_id, img_path, mask_path in tqdm(pairs, desc="salient", disable=not progress):
        width, height = _image_size(img_path)
        raw = _read_mask(mask_path)
        if raw.shape != (height, width):
            raise ConversionError(
                f"Image {img_path} is {height}x{width} but mask {mask_path} is {raw.shape[0]}x{raw.shape[1]}."
            )
        objects = salient_objects(binarize_salient_mask(raw, threshold), min_area_fraction)
        if single_object_only and len(objects) != 1:
            continue
        parts = objects if per_component else ([np.logical_or.reduce(objects)] if objects else [])
        annotations = []
        for part in parts:
            rle, area, bbox = coco_mask_fields(part)
            annotations.append({"bbox": bbox, "bbox_mode": 1, "category_id": 0, "segmentation": rle,
                                "area": area, "iscrowd": 0, "id": next_id})
            next_id += 1
        records.append({"file_name": img_path, "image_id": image_id, "height": height, "width": width,
                        "sem_seg_file_name": mask_path, "num_objects": len(objects), "annotations": annotations})
    return records


def salient_folder_to_coco(image_dir, mask_dir, out_file=None, **kwargs):
    """COCO instance dict of a salient folder, one category ``"salient object"`` (id 1), written atomically to
    ``out_file`` when given. ``file_name`` is relative to ``image_dir`` so that the json registers like any COCO set
    (``register_coco_instances(name, {}, out_file, image_dir)``; RLE masks need ``INPUT.MASK_FORMAT bitmask``).

    Args:
        kwargs: passed to :func:`load_salient_folder` (``single_object_only``, ``per_component``, ...).

    Returns:
        the COCO dict; each image also carries ``num_objects`` and ``mask_file`` (relative to ``mask_dir``).
    """
    records = load_salient_folder(image_dir, mask_dir, **kwargs)
    images, annotations = [], []
    for r in records:
        images.append({"id": r["image_id"], "file_name": os.path.basename(r["file_name"]), "height": r["height"],
                       "width": r["width"], "mask_file": os.path.basename(r["sem_seg_file_name"]),
                       "num_objects": r["num_objects"]})
        for a in r["annotations"]:
            annotations.append({"id": a["id"], "image_id": r["image_id"], "category_id": 1,
                                "segmentation": a["segmentation"], "area": a["area"], "bbox": a["bbox"],
                                "iscrowd": 0})
    coco = {
        "info": {"description": "salient-object masks (wsis)"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "salient object", "supercategory": "salient"}],
    }
    if out_file is not None:
        atomic_write_json(coco, out_file, separators=(",", ":"))
    return coco
