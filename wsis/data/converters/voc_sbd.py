"""PASCAL VOC 2012 + SBD → COCO instance json with real instance masks.

The "train_aug" set (10,582 images) used by BBTP, IRNet, DSRG, WSPS and BoxCaseg is

    (VOC2012 seg train ∪ SBD train ∪ SBD val) − VOC2012 seg val

and its evaluation set is VOC2012 seg val (1,449 images). Expected inputs (the directory named below or its
parent):

- ``voc_root`` = ``VOCdevkit/VOC2012`` with ``JPEGImages/*.jpg``, ``SegmentationObject/*.png``,
  ``SegmentationClass/*.png`` (palette PNGs storing indices) and ``ImageSets/Segmentation/{train,val}.txt``.
- ``sbd_root`` = ``benchmark_RELEASE/dataset`` with ``img/*.jpg``, ``inst/*.mat`` (struct ``GTinst``: ``Segmentation``
  H×W instance index map, ``Categories`` N×1 class indices) and ``{train,val}.txt``. ``cls/*.mat`` is not read:
  ``GTinst.Categories`` already gives every instance's class.

Decisions (documented here, tested in ``tests/converters/test_voc_sbd.py``):

- Source of an image: VOC2012 annotations whenever the image is in VOC2012 seg train (they are finer, and the
  common practice); SBD otherwise.
- VOC void (255 in ``SegmentationObject``, the ~5 px boundary band and "difficult" regions) belongs to no instance;
  the instance masks are exactly the pixels carrying the instance's index. An instance's class is the majority value
  of ``SegmentationClass`` under its pixels.
- ``file_name`` is ``NAME.jpg`` relative to the image root: ``VOC2012/JPEGImages`` whenever ``voc_root`` is given
  (it holds every SBD image too), else SBD's ``dataset/img``. The json's ``info.image_root`` repeats this.
- Image ids: ``YYYY_NNNNNN`` → the integer ``YYYYNNNNNN`` (stable across splits); if any name does not follow that
  pattern, all images get their 1-based index in sorted name order. Images are sorted by id, annotation ids are
  sequential from 1 in that order, instances in increasing index order; the output is byte-identical across runs.
- Bad input (annotation file missing or unreadable, image missing, size mismatch, class outside 1..20, an instance
  without pixels) raises :class:`ConversionError` naming the file and the image; with ``skip_bad=True`` the whole
  image is left out, logged, and counted in the returned summary.
"""
import logging
import os
import re

import numpy as np
import scipy.io
from PIL import Image
from tqdm import tqdm

from wsis.core.masks import encode_mask
from wsis.core.io import atomic_write_json

__all__ = [
    "VOC_CLASSES",
    "VOC_SBD_SPLITS",
    "ConversionError",
    "coco_mask_fields",
    "voc_sbd_image_list",
    "load_voc_instances",
    "load_sbd_instances",
    "build_voc_sbd_coco",
    "convert_voc_sbd",
]

logger = logging.getLogger(__name__)

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# split -> the sources it needs
VOC_SBD_SPLITS = {
    "train_aug": ("voc", "sbd"),
    "val": ("voc",),
    "voc_train": ("voc",),
    "sbd_train": ("sbd",),
    "sbd_val": ("sbd",),
}
_VOC_NAME = re.compile(r"^(\d{4})_(\d{6})$")


class ConversionError(ValueError):
    """A dataset file is missing or malformed. The message names the file and the image."""


def coco_mask_fields(mask):
    """Encode an H×W boolean mask as COCO annotation fields.

    Returns:
        (rle, area, bbox): RLE dict with ``str`` counts, pixel count (int), tight XYWH box ``[x0, y0, w, h]`` (ints,
        ``w = x1 - x0 + 1``, the same convention as ``pycocotools.mask.toBbox``).
    """
    mask = np.asarray(mask, dtype=bool)
    rle = encode_mask(mask)
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return rle, 0, [0, 0, 0, 0]
    x0, y0 = int(xs.min()), int(ys.min())
    bbox = [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]
    return rle, int(len(ys)), bbox


def _resolve(root, child, marker):
    """Accept either the directory itself or its parent (``VOCdevkit`` / ``benchmark_RELEASE``)."""
    if root is None:
        return None
    if not os.path.exists(os.path.join(root, marker)) and os.path.isdir(os.path.join(root, child)):
        return os.path.join(root, child)
    return root


def _read_list(path):
    if not os.path.isfile(path):
        raise ConversionError(f"Image list {path} does not exist.")
    with open(path) as f:
        return {line.strip() for line in f if line.strip()}


def voc_sbd_image_list(split, voc_root=None, sbd_root=None):
    """Names of the images in ``split`` and where their annotations come from.

    Returns:
        list of ``(name, source)`` sorted by name, source ``"voc"`` or ``"sbd"``.
    """
    if split not in VOC_SBD_SPLITS:
        raise ValueError(f"Unknown split {split!r}; choose from {sorted(VOC_SBD_SPLITS)}.")
    voc_root = _resolve(voc_root, "VOC2012", "ImageSets")
    sbd_root = _resolve(sbd_root, "dataset", "inst")
    given = {"voc": voc_root, "sbd": sbd_root}
    missing = [s for s in VOC_SBD_SPLITS[split] if given[s] is None]
    if missing:
        raise ValueError(
            f"Split {split!r} needs the {' and '.join(m.upper() for m in missing)} root. With VOC2012 only use "
            "'voc_train' or 'val'; with SBD only use 'sbd_train' or 'sbd_val' (note that SBD val overlaps VOC2012 val)."
        )
    seg = lambda s: os.path.join(voc_root, "ImageSets", "Segmentation", s + ".txt")  # noqa: E731
    if split == "train_aug":
        voc_train = _read_list(seg("train"))
        sbd = _read_list(os.path.join(sbd_root, "train.txt")) | _read_list(os.path.join(sbd_root, "val.txt"))
        names = (voc_train | sbd) - _read_list(seg("val"))
        return [(n, "voc" if n in voc_train else "sbd") for n in sorted(names)]
    if split in ("val", "voc_train"):
        return [(n, "voc") for n in sorted(_read_list(seg("val" if split == "val" else "train")))]
    return [(n, "sbd") for n in sorted(_read_list(os.path.join(sbd_root, split[4:] + ".txt")))]


def _read_index_png(path, name):
    if not os.path.isfile(path):
        raise ConversionError(f"Annotation {path} for image {name} does not exist.")
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                msg = f"{path} (image {name}) has mode {img.mode}; expected an index PNG (mode P or L)."
                raise ConversionError(msg)
            return np.array(img)
    except ConversionError:
        raise
    except Exception as e:
        raise ConversionError(f"Cannot read {path} (image {name}): {e}") from e


def load_voc_instances(voc_root, name):
    """Instances of one VOC2012 image.

    Returns:
        (masks, classes): bool array N×H×W and int array N of class ids in 1..20, in increasing instance index.
    """
    voc_root = _resolve(voc_root, "VOC2012", "ImageSets")
    obj_path = os.path.join(voc_root, "SegmentationObject", name + ".png")
    cls_path = os.path.join(voc_root, "SegmentationClass", name + ".png")
    obj, cls = _read_index_png(obj_path, name), _read_index_png(cls_path, name)
    if obj.shape != cls.shape:
        raise ConversionError(f"{obj_path} is {obj.shape} but {cls_path} is {cls.shape} (image {name}).")
    indices = [int(v) for v in np.unique(obj) if v not in (0, 255)]
    masks = np.stack([obj == k for k in indices]) if indices else np.zeros((0,) + obj.shape, bool)
    classes = []
    for k, m in zip(indices, masks):
        c = int(np.bincount(cls[m].ravel(), minlength=256).argmax())
        if not 1 <= c <= 20:
            raise ConversionError(f"{cls_path}: instance {k} of image {name} has class id {c}, outside 1..20.")
        classes.append(c)
    return masks, np.asarray(classes, dtype=np.int64)


def _field(struct, key):
    """Read ``key`` of a MATLAB struct loaded by scipy in any layout (record array, mat_struct, dict)."""
    while isinstance(struct, np.ndarray) and struct.dtype == object and struct.size == 1:
        struct = struct.item()
    if isinstance(struct, np.ndarray) and struct.dtype.names is not None:
        value = struct.ravel()[0][key]
    elif isinstance(struct, np.void):
        value = struct[key]
    elif isinstance(struct, dict):
        value = struct[key]
    else:
        value = getattr(struct, key)
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.item()
    return np.asarray(value)


def load_sbd_instances(sbd_root, name):
    """Instances of one SBD image (``inst/NAME.mat``).

    Returns:
        (masks, classes): bool array N×H×W and int array N of class ids in 1..20, in increasing instance index.
    """
    sbd_root = _resolve(sbd_root, "dataset", "inst")
    path = os.path.join(sbd_root, "inst", name + ".mat")
    if not os.path.isfile(path):
        raise ConversionError(f"Annotation {path} for image {name} does not exist.")
    try:
        gt = scipy.io.loadmat(path)["GTinst"]
        seg = _field(gt, "Segmentation")
        cats = _field(gt, "Categories").astype(np.int64).ravel()
    except Exception as e:
        raise ConversionError(f"Cannot read GTinst.Segmentation/Categories from {path} (image {name}): {e}") from e
    if seg.ndim != 2:
        raise ConversionError(f"{path}: GTinst.Segmentation of image {name} has shape {seg.shape}, expected H×W.")
    present = set(np.unique(seg).tolist()) - {0}
    extra = sorted(v for v in present if not 1 <= v <= len(cats))
    if extra:
        raise ConversionError(f"{path}: image {name} has instance indices {extra} without a category.")
    masks = np.stack([seg == k for k in range(1, len(cats) + 1)]) if len(cats) else np.zeros((0,) + seg.shape, bool)
    for k, c in enumerate(cats, start=1):
        if not 1 <= c <= 20:
            raise ConversionError(f"{path}: instance {k} of image {name} has class id {c}, outside 1..20.")
        if k not in present:
            raise ConversionError(f"{path}: instance {k} (class {c}) of image {name} has zero pixels.")
    return masks, cats


def _image_root(voc_root, sbd_root):
    """(directory that ``file_name`` is relative to, its short name for ``info.image_root``)."""
    if voc_root is not None:
        return os.path.join(voc_root, "JPEGImages"), "VOC2012/JPEGImages"
    return os.path.join(sbd_root, "img"), "dataset/img"


def _image_ids(names):
    if all(_VOC_NAME.match(n) for n in names):
        return {n: int(n[:4]) * 1000000 + int(n[5:]) for n in names}
    return {n: i for i, n in enumerate(sorted(names), start=1)}


def build_voc_sbd_coco(split, voc_root=None, sbd_root=None, skip_bad=False, progress=True):
    """Build the COCO instance dict of ``split`` (see the module docstring).

    Returns:
        (coco, skipped): the COCO dict and a list of ``(name, reason)`` for images left out by ``skip_bad``.
    """
    items = voc_sbd_image_list(split, voc_root, sbd_root)
    voc_root = _resolve(voc_root, "VOC2012", "ImageSets")
    sbd_root = _resolve(sbd_root, "dataset", "inst")
    image_root, root_name = _image_root(voc_root, sbd_root)
    ids = _image_ids([n for n, _ in items])
    images, annotations, skipped = [], [], []
    for name, source in tqdm(sorted(items, key=lambda x: ids[x[0]]), desc=f"VOC+SBD {split}", disable=not progress):
        try:
            img_path = os.path.join(image_root, name + ".jpg")
            try:
                with Image.open(img_path) as img:
                    width, height = img.size
            except Exception as e:
                raise ConversionError(f"Cannot read image {img_path} (image {name}): {e}") from e
            loader = load_voc_instances if source == "voc" else load_sbd_instances
            masks, classes = loader(voc_root if source == "voc" else sbd_root, name)
            if masks.shape[1:] != (height, width):
                h, w = masks.shape[1:]
                msg = f"Image {img_path} is {height}x{width} but its {source.upper()} annotation is {h}x{w}"
                raise ConversionError(f"{msg} (image {name}).")
        except ConversionError as e:
            if not skip_bad:
                raise
            logger.warning("Skipping %s: %s", name, e)
            skipped.append((name, str(e)))
            continue
        image_id = ids[name]
        images.append({"id": image_id, "file_name": name + ".jpg", "height": height, "width": width, "source": source})
        for mask, c in zip(masks, classes):
            rle, area, bbox = coco_mask_fields(mask)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(c),
                                "segmentation": rle, "area": area, "bbox": bbox, "iscrowd": 0})
    coco = {
        "info": {"description": f"PASCAL VOC 2012 + SBD instance masks, split {split} (wsis)", "split": split,
                 "image_root": root_name},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": "voc"} for i, n in enumerate(VOC_CLASSES, start=1)],
    }
    return coco, skipped


def convert_voc_sbd(out_file, split="train_aug", voc_root=None, sbd_root=None, skip_bad=False, progress=True):
    """Build ``split`` and write it atomically to ``out_file``.

    Returns:
        dict with ``num_images``, ``num_annotations``, ``skipped`` (list of ``(name, reason)``) and ``image_root``
        (the absolute directory that ``file_name`` is relative to).
    """
    coco, skipped = build_voc_sbd_coco(split, voc_root, sbd_root, skip_bad=skip_bad, progress=progress)
    atomic_write_json(coco, out_file, separators=(",", ":"))
    image_root, _ = _image_root(_resolve(voc_root, "VOC2012", "ImageSets"), _resolve(sbd_root, "dataset", "inst"))
    if skipped:
        logger.warning("Skipped %d bad image(s) of split %s.", len(skipped), split)
    return {"num_images": len(coco["images"]), "num_annotations": len(coco["annotations"]), "skipped": skipped,
            "image_root": os.path.abspath(image_root)}
