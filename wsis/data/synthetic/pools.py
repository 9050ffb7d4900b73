"""
The material of the copy-paste generator (:mod:`wsis.data.synthetic.copy_paste`): source COCO jsons, the choice of
classes, the cut-outs (exact instance masks) and the backgrounds. Pure: numpy, cv2, pycocotools.

Images are read in their stored orientation (EXIF orientation ignored, as COCO's and ECSSD's annotations are) and
must have the size their json gives; an image that cannot be read or has another size is skipped and counted
(:class:`Skips`), never used.
"""
import hashlib
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np
from tqdm import tqdm

from wsis.core.boxes import as_xyxy, mask_tight_box, pixel_extent
from wsis.core.io import sha256_file
from wsis.core.masks import decode_mask, to_bool_mask
from wsis.data.coco_weak import load_coco_instances, read_json
from wsis.data.converters.salient import load_salient_folder

__all__ = ["CopyPasteError", "Skips", "Cutout", "Background", "CocoSource", "read_image", "load_coco_source",
           "choose_classes", "coco_cutouts", "coco_backgrounds", "salient_cutouts", "largest_free_square",
           "output_categories", "split_material", "sha256_files"]

logger = logging.getLogger(__name__)


class CopyPasteError(ValueError):
    """Bad input or settings of the copy-paste generator; the one-line message names the file and the id."""


class Skips:
    """Counts of skipped source items by kind, with the first few messages (for one warning and the README)."""

    def __init__(self):
        self.counts = Counter()
        self.examples = []

    def add(self, kind, message):
        self.counts[kind] += 1
        if len(self.examples) < 5:
            self.examples.append(message)
        logger.debug(message)

    def warn(self, where):
        if self.counts:
            logger.warning("%s: skipped %s. First: %s", where, ", ".join(f"{n} {k}" for k, n in
                                                                         sorted(self.counts.items())),
                           "; ".join(self.examples))


@dataclass
class Cutout:
    """One object to paste: ``image`` (h, w, 3) uint8 BGR crop of its tight box, ``mask`` (h, w) bool exact mask."""
    category_id: int  # COCO category id of the output json
    image: np.ndarray
    mask: np.ndarray
    source_file: str  # file name relative to its image root
    source_id: int  # COCO annotation id, or salient image id
    extra_files: Tuple[str, ...] = ()  # other files it was made from (a salient mask), relative to the same root


@dataclass
class Background:
    """A region free of the chosen classes: ``image`` (h, w, 3) uint8 BGR, ``box`` (x0, y0, x1, y1) in the source."""
    image: np.ndarray
    source_file: str
    source_id: int  # image id
    box: Tuple[int, int, int, int]
    kind: str  # "image" (a whole image without the classes) or "crop" (a square away from their boxes)


def read_image(path, height=None, width=None):
    """``(image, None)``: (H, W, 3) uint8 BGR in stored orientation, or ``(None, reason)`` if unreadable or of
    another size than ``height`` × ``width``."""
    img = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if os.path.isfile(path) else None
    if img is None:
        return None, "cannot read"
    if height is not None and img.shape[:2] != (int(height), int(width)):
        return None, f"is {img.shape[0]}x{img.shape[1]}, its annotation says {height}x{width}"
    return img, None


class CocoSource:
    """
    One source COCO json and its images.

    Attributes:
        dicts: :func:`wsis.data.coco_weak.load_coco_instances` dicts (masks), by image id.
        categories (dict): COCO category id → category dict; ``ids`` name → id.
        mask_pixels (dict): annotation id → pixels of its mask (non-crowd annotations with a mask).
        images_with (dict): category id → ids of images with any annotation of it (crowd and unusable boxes too).
        boxes (dict): image id → XYXY boxes and category ids of every annotation (raw json).
    """

    def __init__(self, json_file, image_root):
        self.json_file, self.image_root = json_file, image_root
        data = read_json(json_file)
        self.dicts, meta = load_coco_instances(json_file, image_root, supervision="mask")
        self.categories = {c["id"]: dict(c) for c in data["categories"]}
        self.ids = {c["name"]: c["id"] for c in data["categories"]}
        to_coco = {v: k for k, v in meta["thing_dataset_id_to_contiguous_id"].items()}
        for d in self.dicts:
            for a in d["annotations"]:
                a["coco_category_id"] = to_coco[a["category_id"]]
        self.images_with, self.boxes = {}, {d["image_id"]: [] for d in self.dicts}
        for a in data.get("annotations", []):
            self.images_with.setdefault(a["category_id"], set()).add(a["image_id"])
            try:
                box = as_xyxy(a["bbox"])
            except (KeyError, ValueError):
                box = None  # unusable box: blocks the whole image for background crops
            self.boxes[a["image_id"]].append((box, a["category_id"]))
        self.mask_pixels = {}
        for d in self.dicts:
            for a in d["annotations"]:
                if not a["iscrowd"] and a["mask_valid"]:
                    self.mask_pixels[a["id"]] = int(np.count_nonzero(self.mask(d, a)))
        self._cache = {}

    def mask(self, d, ann):
        """(H, W) bool mask of annotation ``ann`` of dict ``d``."""
        try:
            return to_bool_mask(ann["segmentation"], d["height"], d["width"])
        except (ValueError, TypeError) as e:
            raise CopyPasteError(f"{self.json_file}: annotation id {ann['id']} (image id {d['image_id']}) has an "
                                 f"unusable mask ({e})") from None

    def image(self, d, skips):
        """(H, W, 3) uint8 image of dict ``d`` (read once), or None (counted in ``skips``) when unusable."""
        if d["image_id"] not in self._cache:
            img, reason = read_image(d["file_name"], d["height"], d["width"])
            if reason:
                skips.add("unreadable image", f"image id {d['image_id']} ({d['file_name']}) {reason}")
            self._cache[d["image_id"]] = img
        return self._cache[d["image_id"]]

    def class_ids(self, names):
        """COCO ids of category ``names``; :class:`CopyPasteError` for a name this json does not have."""
        missing = [n for n in names if n not in self.ids]
        if missing:
            known = ", ".join(sorted(self.ids)[:8])
            raise CopyPasteError(f"{self.json_file}: class {missing[0]!r} is not one of its categories "
                                 f"({known}{', ...' if len(self.ids) > 8 else ''})")
        return [self.ids[n] for n in names]

    def usable(self, min_pixels):
        """Counter: category id → non-crowd instances whose mask has at least ``min_pixels`` pixels."""
        out = Counter()
        for d in self.dicts:
            for a in d["annotations"]:
                if self.mask_pixels.get(a["id"], 0) >= min_pixels:
                    out[a["coco_category_id"]] += 1
        return out

    def clean_images(self, cat_ids):
        """Dicts of the images that have no annotation (crowd included) of any of ``cat_ids``."""
        dirty = set().union(*[self.images_with.get(c, set()) for c in cat_ids])
        return [d for d in self.dicts if d["image_id"] not in dirty]


def load_coco_source(json_file, image_root):
    """:class:`CocoSource` of a COCO instances json (``AnnotationError``, a ``ValueError``, if missing/malformed)."""
    return CocoSource(json_file, image_root)


def choose_classes(sources, num, min_instances, min_pixels, exclude=(), min_backgrounds=0):
    """
    The ``num`` most frequent classes of ``sources[0]`` (by usable cut-outs, ties by category id) that have at least
    ``min_instances`` usable cut-outs in every source and, added greedily, still leave at least ``min_backgrounds``
    whole images without any chosen class in every source. Names in ``exclude`` are never chosen.

    Returns:
        list[str]: the names, by category id.
    """
    counts = [s.usable(min_pixels) for s in sources]
    first = sources[0]
    ranked = sorted(counts[0], key=lambda c: (-counts[0][c], c))
    chosen = []
    for cid in ranked:
        name = first.categories[cid]["name"]
        if len(chosen) == num or name in exclude:
            continue
        if any(name not in s.ids or cnt[s.ids[name]] < min_instances for s, cnt in zip(sources, counts)):
            continue
        trial = chosen + [name]
        if all(len(s.clean_images(s.class_ids(trial))) >= min_backgrounds for s in sources):
            chosen = trial
    if len(chosen) < num:
        raise CopyPasteError(f"{first.json_file}: only {len(chosen)} classes ({', '.join(chosen) or 'none'}) have "
                             f">= {min_instances} cut-outs of >= {min_pixels} px in every source and leave "
                             f">= {min_backgrounds} backgrounds; {num} were asked for")
    return sorted(chosen, key=lambda n: first.ids[n])


def _crop(img, mask):
    x0, y0, x1, y1 = (int(v) for v in mask_tight_box(mask))
    return np.ascontiguousarray(img[y0:y1, x0:x1]), np.ascontiguousarray(mask[y0:y1, x0:x1])


def coco_cutouts(source, cat_ids, min_pixels, skips, progress=False):
    """
    Cut-outs of the non-crowd instances of ``cat_ids`` whose mask has at least ``min_pixels`` pixels, each cut with
    its exact mask and cropped to its tight box.

    Returns:
        dict: category id → list[:class:`Cutout`] (by image id, annotation order).
    """
    out = {c: [] for c in cat_ids}
    for d in tqdm(source.dicts, desc="cut-outs", unit="img", disable=not progress):
        anns = [a for a in d["annotations"] if a["coco_category_id"] in out
                and source.mask_pixels.get(a["id"], 0) >= min_pixels]
        img = source.image(d, skips) if anns else None
        if img is None:
            continue
        rel = os.path.relpath(d["file_name"], source.image_root)
        for a in anns:
            crop, mask = _crop(img, source.mask(d, a))
            out[a["coco_category_id"]].append(Cutout(a["coco_category_id"], crop, mask, rel, a["id"]))
    return out


def largest_free_square(blocked):
    """
    The largest square of ``blocked`` (H, W) bool with no blocked pixel (first in raster order among the largest).

    Returns:
        (x0, y0, side) or None when every pixel is blocked.
    """
    h, w = blocked.shape
    ii = np.zeros((h + 1, w + 1), np.int64)
    ii[1:, 1:] = np.asarray(blocked, np.int64).cumsum(0).cumsum(1)

    def find(s):
        sums = ii[s:, s:] - ii[:-s, s:] - ii[s:, :-s] + ii[:-s, :-s]  # (h-s+1, w-s+1) blocked pixels per window
        free = np.flatnonzero(sums.ravel() == 0)
        return None if free.size == 0 else divmod(int(free[0]), w - s + 1)

    lo, hi, best = 1, min(h, w), None
    while lo <= hi:
        mid = (lo + hi) // 2
        pos = find(mid)
        if pos is None:
            hi = mid - 1
        else:
            best, lo = (pos[1], pos[0], mid), mid + 1
    return best


def coco_backgrounds(source, cat_ids, mode, min_backgrounds, min_side, skips, names=()):
    """
    Backgrounds free of ``cat_ids``: whole images without any of their annotations (crowd included) and, when
    ``mode`` is "crops" (or "auto" and fewer than ``min_backgrounds`` whole images), also the largest square of each
    other image that touches no box of those classes, when its side is at least ``min_side`` px.

    Returns:
        list[:class:`Background`]; :class:`CopyPasteError` when fewer than ``min_backgrounds`` remain.
    """
    if mode not in ("images", "crops", "auto"):
        raise CopyPasteError(f"background mode must be 'images', 'crops' or 'auto', got {mode!r}")
    clean = {d["image_id"] for d in source.clean_images(cat_ids)}
    crops = mode == "crops" or (mode == "auto" and len(clean) < min_backgrounds)
    out, wanted = [], set(cat_ids)
    for d in source.dicts:
        h, w = d["height"], d["width"]
        if d["image_id"] in clean:
            box = (0, 0, w, h)
        elif crops:
            blocked = np.zeros((h, w), bool)
            for b, cid in source.boxes[d["image_id"]]:
                if cid in wanted:
                    x0, y0, x1, y1 = (0, 0, w, h) if b is None else pixel_extent(b, h, w, "outward")
                    blocked[y0:y1, x0:x1] = True
            sq = largest_free_square(blocked)
            if sq is None or sq[2] < min_side:
                continue
            box = (sq[0], sq[1], sq[0] + sq[2], sq[1] + sq[2])
        else:
            continue
        img = source.image(d, skips)
        if img is not None:
            region = np.ascontiguousarray(img[box[1]:box[3], box[0]:box[2]])
            out.append(Background(region, os.path.relpath(d["file_name"], source.image_root), d["image_id"],
                                  tuple(int(v) for v in box), "image" if d["image_id"] in clean else "crop"))
    if len(out) < min_backgrounds:
        raise CopyPasteError(f"{source.json_file}: only {len(out)} usable backgrounds without {', '.join(names)} "
                             f"(need {min_backgrounds}, background mode {mode!r}); try mode 'crops' or other classes")
    return out


def salient_cutouts(root, category_id, min_pixels, train_max_id, skips, progress=False):
    """
    Cut-outs of the single-object images of a salient folder (``root/images``, ``root/masks``, ECSSD layout): the
    object mask (specks removed, :mod:`wsis.data.converters.salient`) cut from its image. Image ids up to
    ``train_max_id`` go to the train split, the others to val.

    Returns:
        dict: "train" / "val" → list[:class:`Cutout`] by image id.
    """
    records = load_salient_folder(os.path.join(root, "images"), os.path.join(root, "masks"),
                                  single_object_only=True, progress=progress)
    out = {"train": [], "val": []}
    for r in records:
        mask = decode_mask(r["annotations"][0]["segmentation"])
        if np.count_nonzero(mask) < min_pixels:
            continue
        img, reason = read_image(r["file_name"], r["height"], r["width"])
        if reason:
            skips.add("unreadable image", f"salient image id {r['image_id']} ({r['file_name']}) {reason}")
            continue
        crop, mask = _crop(img, mask)
        split = "train" if r["image_id"] <= train_max_id else "val"
        out[split].append(Cutout(category_id, crop, mask, os.path.relpath(r["file_name"], root), r["image_id"],
                                 (os.path.relpath(r["sem_seg_file_name"], root),)))
    return out


def output_categories(src, names, config, sources):
    """
    The output categories: the chosen COCO ones (``names``) with the ids of ``src``, which every one of ``sources``
    must share, and with ``config.salient_root`` the salient class with a new id (one more than any source's).

    Returns:
        (list[dict], int or None): the categories sorted by id, and the salient class's id.
    """
    ids = src.class_ids(names)
    for s in sources.values():
        if s.class_ids(names) != ids:
            raise CopyPasteError(f"{s.json_file}: classes {names} have ids {s.class_ids(names)}, {src.json_file} "
                                 f"has {ids}")
    cats = [{k: v for k, v in src.categories[i].items() if k in ("id", "name", "supercategory")} for i in ids]
    salient_id = None
    if config.salient_root and config.salient_class in names:
        raise CopyPasteError(f"salient class name {config.salient_class!r} is also a chosen COCO class")
    if config.salient_root:
        salient_id = max(max(s.categories) for s in sources.values()) + 1
        cats.append({"id": salient_id, "name": config.salient_class, "supercategory": "salient"})
    return sorted(cats, key=lambda c: c["id"]), salient_id


def split_material(split, src, names, categories, salient, salient_id, config, skips, progress):
    """
    Everything one split draws from: its backgrounds, one cut-out list per category (in ``categories`` order; the
    salient one from ``salient[split]``, see :func:`salient_cutouts`), and its source record (files used, sha256).
    ``config`` is a :class:`~wsis.data.synthetic.copy_paste.CopyPasteConfig`.
    """
    cat_ids = src.class_ids(names)
    backgrounds = coco_backgrounds(src, cat_ids, config.background_mode, config.min_backgrounds,
                                   config.min_background_side, skips, names)
    cuts = coco_cutouts(src, cat_ids, config.min_cutout_pixels, skips, progress)
    files = {b.source_file for b in backgrounds} | {c.source_file for p in cuts.values() for c in p}
    record = {"json": src.json_file, "json_sha256": sha256_file(src.json_file), "image_root": src.image_root,
              "images_used": len(files), "images_sha256": sha256_files(src.image_root, files),
              "backgrounds": dict(sorted(Counter(b.kind for b in backgrounds).items()))}
    if salient is not None:
        cuts[salient_id] = salient[split]
        sal = {f for c in salient[split] for f in (c.source_file,) + c.extra_files}
        record["salient"] = {"root": config.salient_root, "files_used": len(sal),
                             "files_sha256": sha256_files(config.salient_root, sal)}
    for c in categories:
        if not cuts.get(c["id"]):
            raise CopyPasteError(f"{src.json_file}: no usable cut-out of class {c['name']!r} (id {c['id']}, mask "
                                 f">= {config.min_cutout_pixels} px) for the {split} split")
    return backgrounds, [cuts[c["id"]] for c in categories], record


def sha256_files(root, rel_paths):
    """One hex sha256 over sorted ``rel_paths`` under ``root``: of each name and its file's sha256."""
    h = hashlib.sha256()
    for rel in sorted(set(rel_paths)):
        h.update(f"{rel}\t{sha256_file(os.path.join(root, rel))}\n".encode())
    return h.hexdigest()
