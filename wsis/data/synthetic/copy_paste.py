"""
A controlled copy-paste benchmark set: real instance cut-outs pasted onto real backgrounds by a seeded generator.

Image-tag methods (CAM, IRNet, DSRG) learn little from 80 real images on a CPU, so they are measured on this set:

1. **Classes**: named, or the N most frequent classes of the train source with enough usable cut-outs in every
   source (:func:`wsis.data.synthetic.pools.choose_classes`), plus optionally one salient-object class (ECSSD).
2. **Cut-outs**: non-crowd instances of the chosen classes whose mask has at least ``min_cutout_pixels`` pixels,
   cut from their image with their exact mask and cropped to the mask's tight box; salient objects likewise.
3. **Backgrounds**: source images with no annotation (crowd included) of a chosen class; with background mode
   "crops" (or "auto" when fewer than ``min_backgrounds``) also the largest square of other images that touches
   no box of a chosen class. Each output image takes a random square of one (``background_crop`` of its shorter
   side, random flip), resized to ``image_size`` × ``image_size``.
4. **Pasting**: ``objects_per_image`` objects (none for a fraction ``empty_fraction`` of images: untagged
   images). Each draws a class uniformly, then one of its cut-outs, then a placement: the longer side of its box
   becomes ``U(scale) × image_size``, a random flip, a random position with the box inside the image. The mask is
   a hard alpha (resized as a float, >= 0.5). A later object occludes earlier ones; a placement is re-drawn (up
   to ``max_tries``, then the object is dropped and counted) when it would cover more than ``max_overlap`` of an
   earlier object's visible area, or leave that object less than ``min_visible_fraction`` of its pasted area or
   fewer than ``min_visible_pixels`` pixels, or is itself smaller than ``min_visible_pixels``.
5. **Labels** are the **visible** masks (disjoint): COCO annotations (RLE with str counts, tight box, area), the
   image tags ``image_labels`` (COCO ids present) and semantic PNGs (0 background, contiguous class + 1).

Splits do not leak: the train split uses only the train source's cut-outs and backgrounds, val only val's (salient
images: by image id). Every random draw of output image ``i`` of split ``k`` comes from
``np.random.default_rng([seed, k, i])``, so the same sources and config give the same bytes of every file.

Outputs of :func:`build_copy_paste` under ``out_dir``::

    annotations/instances_{train,val}.json   train/NNNNNN.png, val/NNNNNN.png (lossless)
    semantic/{train,val}/<image_id>.png      README.md, params.json

This is a controlled benchmark, never a substitute for VOC/COCO figures.
"""
import dataclasses
import os
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Tuple, Union

import cv2
import numpy as np
from tqdm import tqdm

from wsis.core.io import atomic_open, atomic_write_json, atomic_write_png
from wsis.core.semantic import semantic_map
from wsis.data.converters.voc_sbd import coco_mask_fields

from . import pools
from .pools import CopyPasteError, Skips

__all__ = ["CopyPasteConfig", "CopyPasteError", "SPLITS", "compose_image", "build_copy_paste"]

SPLITS = ("train", "val")
OUTPUTS = ("annotations", "train", "val", "semantic", "README.md", "params.json")


@dataclass(frozen=True)
class CopyPasteConfig:
    """Every parameter of the generator (the module docstring says what each does); recorded in params.json."""
    seed: int = 0
    classes: Union[Tuple[str, ...], int] = 4  # names, or N: the N most frequent (see choose_classes)
    min_class_instances: int = 10  # with classes=N: usable cut-outs a class needs in every source
    exclude_classes: Tuple[str, ...] = ("person",)  # with classes=N: never chosen
    min_cutout_pixels: int = 1024  # mask pixels of a cut-out, in the source image
    objects_per_image: Tuple[int, int] = (1, 3)  # inclusive range
    scale: Tuple[float, float] = (0.25, 0.5)  # longer box side / output side
    max_overlap: float = 0.4
    min_visible_fraction: float = 0.3
    min_visible_pixels: int = 64
    max_tries: int = 20
    flip_prob: float = 0.5
    image_size: int = 160
    background_crop: Tuple[float, float] = (0.6, 1.0)  # side of the square crop / shorter side of the background
    background_mode: str = "auto"  # "images", "crops" or "auto"
    min_backgrounds: int = 20
    min_background_side: int = 128  # of a background crop, source pixels
    num_train: int = 1200
    num_val: int = 300
    empty_fraction: float = 0.05
    salient_root: Optional[str] = None  # folder with images/ and masks/ (ECSSD layout)
    salient_class: str = "salient object"
    salient_train_max_id: int = 800

    def __post_init__(self):
        if not isinstance(self.classes, int):
            object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        for name in ("exclude_classes", "objects_per_image", "scale", "background_crop"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        (lo, hi), (s0, s1), (c0, c1) = self.objects_per_image, self.scale, self.background_crop
        rules = {"classes: >= 1 name or number": (self.classes if isinstance(self.classes, int) else
                                                 len(self.classes)) >= 1,
                 "objects_per_image: 0 <= min <= max": 0 <= lo <= hi, "scale: 0 < lo <= hi <= 1": 0 < s0 <= s1 <= 1,
                 "background_crop: 0 < lo <= hi <= 1": 0 < c0 <= c1 <= 1,
                 "max_overlap, min_visible_fraction, empty_fraction, flip_prob: in [0, 1]": all(
                     0 <= v <= 1 for v in (self.max_overlap, self.min_visible_fraction, self.empty_fraction,
                                           self.flip_prob)),
                 "image_size >= 8, num_train/num_val >= 0, max_tries >= 1, min_cutout_pixels >= 1": (
                     self.image_size >= 8 and min(self.num_train, self.num_val) >= 0 and self.max_tries >= 1
                     and self.min_cutout_pixels >= 1),
                 "background_mode: 'images', 'crops' or 'auto'": self.background_mode in ("images", "crops", "auto")}
        broken = [k for k, ok in rules.items() if not ok]
        if broken:
            raise CopyPasteError(f"invalid CopyPasteConfig ({broken[0]}): {self}")

    def to_dict(self):
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _resize(arr, w, h):
    """``arr`` resized to ``w`` × ``h``: INTER_AREA when shrinking, INTER_LINEAR when enlarging."""
    interp = cv2.INTER_AREA if w * h < arr.shape[0] * arr.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(arr, (int(w), int(h)), interpolation=interp)


def _background(bg, size, config, rng):
    """(size, size, 3) uint8 random square of ``bg`` (flipped at random) and its record."""
    rh, rw = bg.image.shape[:2]
    side = max(1, int(round(rng.uniform(*config.background_crop) * min(rh, rw))))
    y, x = int(rng.integers(0, rh - side + 1)), int(rng.integers(0, rw - side + 1))
    flip = bool(rng.random() < config.flip_prob)
    patch = bg.image[y:y + side, x:x + side]
    patch = np.ascontiguousarray(patch[:, ::-1] if flip else patch)
    x0, y0 = bg.box[0] + x, bg.box[1] + y
    record = {"file": bg.source_file, "image_id": bg.source_id, "kind": bg.kind, "box": [x0, y0, x0 + side,
                                                                                          y0 + side], "flip": flip}
    return _resize(patch, size, size), record


def _placement(cut, size, config, rng):
    """A random placement of ``cut``: (x, y, resized (h, w) bool mask, flip)."""
    ch, cw = cut.mask.shape
    long_side = min(size, max(1, int(round(rng.uniform(*config.scale) * size))))
    if cw >= ch:
        w, h = long_side, max(1, int(round(long_side * ch / cw)))
    else:
        h, w = long_side, max(1, int(round(long_side * cw / ch)))
    flip = bool(rng.random() < config.flip_prob)
    x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    mask = _resize(cut.mask.astype(np.float32), w, h) >= 0.5
    return x, y, (mask[:, ::-1] if flip else mask), flip


def _fits(full, visible, pasted, config):
    """Whether a new (S, S) mask ``full`` may go on top of the ``visible`` masks (pasted areas ``pasted``)."""
    if np.count_nonzero(full) < config.min_visible_pixels:
        return False
    for v, area in zip(visible, pasted):
        left_before = np.count_nonzero(v)
        cover = np.count_nonzero(v & full)
        left = left_before - cover
        if cover and (cover > config.max_overlap * left_before
                      or left < max(config.min_visible_pixels, config.min_visible_fraction * area)):
            return False
    return True


def compose_image(background, class_pools, config, rng):
    """
    One copy-paste image.

    Args:
        background (Background): the background (its region array (h, w, 3) uint8).
        class_pools (list[list[Cutout]]): the cut-outs of each class (one list per class, none empty).
        config (CopyPasteConfig): the parameters. rng (np.random.Generator): every random draw.

    Returns:
        dict: ``image`` (S, S, 3) uint8 BGR, ``masks`` list of (S, S) bool visible masks (disjoint, non-empty),
        ``objects`` (one dict per mask: category_id, source_file, source_id, flip, pasted_area: its pixels before
        later objects occluded it), ``background`` (its record)
        and ``dropped`` (objects that found no placement).
    """
    size = config.image_size
    canvas, bg_record = _background(background, size, config, rng)
    if rng.random() < config.empty_fraction:
        num = 0
    else:
        num = int(rng.integers(config.objects_per_image[0], config.objects_per_image[1] + 1))
    visible, pasted, objects, dropped = [], [], [], 0
    for _ in range(num):
        pool = class_pools[int(rng.integers(len(class_pools)))]
        cut = pool[int(rng.integers(len(pool)))]
        for _try in range(config.max_tries):
            x, y, mask, flip = _placement(cut, size, config, rng)
            h, w = mask.shape
            full = np.zeros((size, size), bool)
            full[y:y + h, x:x + w] = mask
            if _fits(full, visible, pasted, config):
                break
        else:
            dropped += 1
            continue
        patch = _resize(cut.image, w, h)
        patch = patch[:, ::-1] if flip else patch
        region = canvas[y:y + h, x:x + w]
        region[mask] = patch[mask]
        for v in visible:  # the new object occludes the earlier ones
            v &= ~full
        visible.append(full)
        pasted.append(int(np.count_nonzero(full)))
        objects.append({"category_id": cut.category_id, "source_file": cut.source_file, "source_id": cut.source_id,
                        "flip": flip, "pasted_area": pasted[-1]})
    return {"image": canvas, "masks": visible, "objects": objects, "background": bg_record, "dropped": dropped}


def _prepare_out(out_dir, overwrite):
    """Refuse a non-empty ``out_dir`` without ``overwrite``; with it, remove the outputs of an earlier build (only
    when the folder holds nothing else, so that a wrong ``--out`` never deletes other files)."""
    if not os.path.isdir(out_dir) or not os.listdir(out_dir):
        return
    if not overwrite:
        raise CopyPasteError(f"{out_dir}: exists and is not empty; pass --overwrite (overwrite=True) to replace it")
    foreign = sorted(e for e in os.listdir(out_dir) if e not in OUTPUTS and not e.startswith(".tmp-"))
    if foreign:
        raise CopyPasteError(f"{out_dir}: holds {foreign[0]!r}, not a copy-paste output; not replacing it")
    for name in os.listdir(out_dir):
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _split_set(split, k, backgrounds, class_pools, contiguous, config, out_dir, progress):
    """Generate one split, write its PNGs; returns its COCO images, annotations and counts."""
    images, annotations, dropped, empty = [], [], 0, 0
    num = config.num_train if split == "train" else config.num_val
    for i in tqdm(range(num), desc=f"copy-paste {split}", unit="img", disable=not progress):
        rng = np.random.default_rng([config.seed, k, i])
        out = compose_image(backgrounds[int(rng.integers(len(backgrounds)))], class_pools, config, rng)
        image_id, file_name = i + 1, f"{i + 1:06d}.png"
        atomic_write_png(out["image"], os.path.join(out_dir, split, file_name))
        classes = [contiguous[o["category_id"]] for o in out["objects"]]
        sem = semantic_map(out["masks"], classes, config.image_size, config.image_size, dtype=np.uint8)
        atomic_write_png(sem, os.path.join(out_dir, "semantic", split, f"{image_id}.png"))
        for mask, obj in zip(out["masks"], out["objects"]):
            rle, area, bbox = coco_mask_fields(mask)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": obj["category_id"],
                                "segmentation": rle, "area": area, "bbox": bbox, "iscrowd": 0,
                                "source": {k: obj[k] for k in ("source_file", "source_id", "flip", "pasted_area")}})
        images.append({"id": image_id, "file_name": file_name, "height": config.image_size,
                       "width": config.image_size, "image_labels": sorted({o["category_id"] for o in out["objects"]}),
                       "background": out["background"]})
        dropped += out["dropped"]
        empty += not out["objects"]
    return images, annotations, {"dropped_objects": dropped, "images_without_objects": empty}


def build_copy_paste(sources, config, out_dir, progress=True, overwrite=False):
    """
    Build the copy-paste set (module docstring) into ``out_dir``.

    Args:
        sources (dict): split ("train", "val") → ``(json_file, image_root)`` of a COCO instances json; the split's
            cut-outs and backgrounds come only from it. Classes chosen by number rank on "train" (else the first).
        config (CopyPasteConfig): the parameters (``salient_root``: the optional extra class).
        out_dir (str): output folder; a non-empty one is refused unless ``overwrite`` (then only a folder holding
            nothing but this generator's outputs is replaced, and only once the inputs have loaded).

    Returns:
        dict: the summary (also in params.json): classes, per-split counts, skipped source images, seconds.

    Raises:
        CopyPasteError / AnnotationError / ConversionError (all ``ValueError``): one line naming the file and id.
    """
    start = time.perf_counter()
    if not sources or set(sources) - set(SPLITS):
        raise CopyPasteError(f"sources must map some of {SPLITS} to (json_file, image_root), got {sorted(sources)}")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CopyPasteError(f"{out_dir}: exists and is not a folder")
    if not overwrite:
        _prepare_out(out_dir, overwrite)
    splits = [s for s in SPLITS if s in sources]
    srcs = {s: pools.load_coco_source(*sources[s]) for s in splits}
    if isinstance(config.classes, int):
        names = pools.choose_classes([srcs[s] for s in splits], config.classes, config.min_class_instances,
                                     config.min_cutout_pixels, config.exclude_classes, config.min_backgrounds)
    else:
        names = list(config.classes)
    categories, salient_id = pools.output_categories(srcs[splits[0]], names, config, srcs)
    contiguous = {c["id"]: i for i, c in enumerate(categories)}
    skips = Skips()
    salient = None
    if config.salient_root:
        salient = pools.salient_cutouts(config.salient_root, salient_id, config.min_cutout_pixels,
                                        config.salient_train_max_id, skips, progress)
    material = {s: pools.split_material(s, srcs[s], names, categories, salient, salient_id, config, skips, progress)
                for s in splits}
    skips.warn("copy-paste sources")
    _prepare_out(out_dir, overwrite)  # only now that the inputs are known to be good
    summary = {"classes": [c["name"] for c in categories], "splits": {}}
    for k, split in enumerate(splits):
        backgrounds, class_pools, _ = material[split]
        images, annotations, counts = _split_set(split, k, backgrounds, class_pools, contiguous, config, out_dir,
                                                 progress)
        per_class = Counter(a["category_id"] for a in annotations)
        summary["splits"][split] = dict(
            images=len(images), instances=len(annotations), **counts,
            instances_per_class={c["name"]: per_class[c["id"]] for c in categories},
            cutouts_per_class={c["name"]: len(p) for c, p in zip(categories, class_pools)},
            backgrounds=len(backgrounds))
        coco = {"info": {"description": f"wsis controlled copy-paste benchmark, {split} split (never a substitute "
                                        "for VOC/COCO figures)"},
                "images": images, "annotations": annotations, "categories": categories}
        atomic_write_json(coco, os.path.join(out_dir, "annotations", f"instances_{split}.json"),
                          separators=(",", ":"))
    summary["skipped"] = {"counts": dict(sorted(skips.counts.items())), "first": list(skips.examples)}
    params = {"generator": "wsis.data.synthetic.copy_paste", "config": config.to_dict(),
              "sources": {s: material[s][2] for s in splits}, "categories": categories, **summary}
    atomic_write_json(params, os.path.join(out_dir, "params.json"), indent=1)
    with atomic_open(os.path.join(out_dir, "README.md")) as f:
        f.write(render_readme(params))
    summary["seconds"] = round(time.perf_counter() - start, 2)
    return summary


def render_readme(params):
    """The README.md of a built set, from its params.json content."""
    cfg, cats, splits = params["config"], params["categories"], params["splits"]
    lines = ["# Copy-paste benchmark set (wsis)", "",
             "**A controlled benchmark, never a substitute for VOC/COCO figures.** Real instance cut-outs (their "
             "exact masks) pasted onto real background images by the seeded generator "
             "`wsis.data.synthetic.copy_paste` (its module docstring gives the rules). Same sources and parameters "
             "give the same bytes of every file.", "",
             "Layout: `annotations/instances_<split>.json` (COCO instances: visible-mask RLE, tight boxes, per-image "
             "tags `image_labels`), `<split>/NNNNNN.png`, `semantic/<split>/<image_id>.png` (uint8: 0 background, "
             "contiguous class + 1 in the json's category order), `params.json` (all of this, machine-readable).", "",
             "## Sources", ""]
    for split, rec in params["sources"].items():
        lines += [f"- {split}: `{rec['json']}` (sha256 `{rec['json_sha256']}`), images `{rec['image_root']}`: "
                  f"{rec['images_used']} used (combined sha256 `{rec['images_sha256']}`); backgrounds "
                  + ", ".join(f"{n} {k}s" for k, n in rec["backgrounds"].items())]
        if "salient" in rec:
            sal = rec["salient"]
            lines.append(f"- {split} salient objects: `{sal['root']}`: {sal['files_used']} image and mask files "
                         f"(combined sha256 `{sal['files_sha256']}`)")
    lines += ["", "Backgrounds of kind *image* are whole source images without any annotation (crowd included) of a "
              "chosen class; of kind *crop*, the largest square of an image that touches no box of a chosen class. "
              "Train uses only the train source, val only the val source"
              + (f"; salient images by id (<= {cfg['salient_train_max_id']} train)." if cfg["salient_root"] else "."),
              "", "## Classes and counts", "",
              "| id | contiguous | name | " + " | ".join(f"{s} cut-outs | {s} instances" for s in splits) + " |",
              "|---|---|---|" + "---|---|" * len(splits)]
    for i, c in enumerate(cats):
        lines.append(f"| {c['id']} | {i} | {c['name']} | " + " | ".join(
            f"{splits[s]['cutouts_per_class'][c['name']]} | {splits[s]['instances_per_class'][c['name']]}"
            for s in splits) + " |")
    lines.append("")
    for s, n in splits.items():
        lines.append(f"- {s}: {n['images']} images ({n['images_without_objects']} without objects), "
                     f"{n['instances']} instances, {n['dropped_objects']} objects dropped (no placement fitted)")
    skipped = params["skipped"]["counts"]
    lines += ["- skipped source images: " + (", ".join(f"{n} {k}" for k, n in skipped.items()) or "none")
              + "".join(f"\n  - {m}" for m in params["skipped"]["first"]), "", "## Parameters", "",
              "| parameter | value |", "|---|---|"]
    lines += [f"| `{k}` | `{v}` |" for k, v in cfg.items()]
    return "\n".join(lines) + "\n"
