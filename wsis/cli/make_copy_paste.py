"""
Build the controlled copy-paste benchmark set (:mod:`wsis.data.synthetic.copy_paste`): real COCO instance cut-outs
(exact masks) and ECSSD salient objects pasted onto real backgrounds without those classes, seeded.

    python tools/make_copy_paste.py                      # the standard set from ../shared/data into datasets/
    python tools/make_copy_paste.py --classes car,chair,bowl --no-salient --out datasets/cp_small --num-train 200
    python tools/make_copy_paste.py --train-json a.json --train-images imgs_a --val-json b.json --val-images imgs_b

Defaults: coco_tiny train → train split, coco_tiny val → val split (cut-outs and backgrounds of a split come from
its own source only), the 4 most frequent coco_tiny train classes with >= 10 usable cut-outs (mask >= 1024 px) in
both splits, person excluded (it is in half of the images: few backgrounds would remain), plus "salient object"
from ECSSD (images <= 800 train, the rest val) when ../shared/data/ecssd exists; 160x160 images, 1200 train / 300
val. Writes annotations/instances_{train,val}.json, {train,val}/NNNNNN.png, semantic/{train,val}/<id>.png,
README.md and params.json; an existing output folder is refused unless --overwrite.

A controlled benchmark, never a substitute for VOC/COCO figures.
"""
import argparse
import logging
import os
import sys
import time

from wsis.data.coco_weak import AnnotationError
from wsis.data.converters.voc_sbd import ConversionError
from wsis.data.synthetic import CopyPasteConfig, CopyPasteError, build_copy_paste

#: ``../shared/data`` next to the repository (this file is wsis/cli/make_copy_paste.py)
DEFAULT_ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared",
                                             "data"))
DEFAULT_OUT = os.path.join("datasets", "copy_paste_coco_tiny")


def _classes(text):
    """"4" → 4 (the 4 most frequent), "car,chair" → ("car", "chair")."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    return tuple(c.strip() for c in text.split(",") if c.strip())


def parse_args(argv=None):
    d = CopyPasteConfig()
    coco = os.path.join(DEFAULT_ROOT, "coco_tiny")
    ecssd = os.path.join(DEFAULT_ROOT, "ecssd")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    s = p.add_argument_group("sources")
    s.add_argument("--train-json", default=os.path.join(coco, "annotations", "instances_train2017.json"))
    s.add_argument("--train-images", default=os.path.join(coco, "train2017"))
    # the default val split recomposes the train split's COCO cut-outs and backgrounds into new images (seen instances,
    # new scenes: what a classifier trained from scratch on 15-28 cut-outs per class can localise); pass coco_tiny val
    # (--val-json .../instances_val2017.json --val-images .../val2017) to measure unseen instances
    s.add_argument("--val-json", default=os.path.join(coco, "annotations", "instances_train2017.json"))
    s.add_argument("--val-images", default=os.path.join(coco, "train2017"))
    s.add_argument("--salient-root", default=ecssd if os.path.isdir(ecssd) else None,
                   help="salient folder (images/, masks/) of the extra class (default: %(default)s if it exists)")
    s.add_argument("--no-salient", action="store_true", help="no salient-object class")
    s.add_argument("--salient-class", default=d.salient_class)
    s.add_argument("--salient-train-max-id", type=int, default=d.salient_train_max_id,
                   help="salient images with ids up to this go to train, the others to val (default: %(default)s)")
    c = p.add_argument_group("classes and cut-outs")
    c.add_argument("--classes", type=_classes, default=d.classes,
                   help="comma-separated names, or N: the N most frequent of the train source (default: %(default)s)")
    c.add_argument("--exclude-classes", default=",".join(d.exclude_classes),
                   help="with --classes N: never choose these (default: %(default)s; '' for none)")
    c.add_argument("--min-class-instances", type=int, default=d.min_class_instances)
    c.add_argument("--min-cutout-pixels", type=int, default=d.min_cutout_pixels)
    g = p.add_argument_group("images")
    g.add_argument("--num-train", type=int, default=d.num_train)
    g.add_argument("--num-val", type=int, default=d.num_val)
    g.add_argument("--size", type=int, default=d.image_size, help="output images are SIZE x SIZE")
    g.add_argument("--objects", type=int, nargs=2, default=d.objects_per_image, metavar=("MIN", "MAX"))
    g.add_argument("--scale", type=float, nargs=2, default=d.scale, metavar=("LO", "HI"),
                   help="longer side of a pasted object / image side (default: %(default)s)")
    g.add_argument("--max-overlap", type=float, default=d.max_overlap)
    g.add_argument("--min-visible-fraction", type=float, default=d.min_visible_fraction)
    g.add_argument("--min-visible-pixels", type=int, default=d.min_visible_pixels)
    g.add_argument("--empty-fraction", type=float, default=d.empty_fraction, help="images without objects")
    g.add_argument("--background-mode", choices=("images", "crops", "auto"), default=d.background_mode)
    g.add_argument("--min-backgrounds", type=int, default=d.min_backgrounds)
    g.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing copy-paste set in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p.parse_args(argv)


def build_config(args):
    """The :class:`CopyPasteConfig` of parsed arguments."""
    return CopyPasteConfig(
        seed=args.seed, classes=args.classes, min_class_instances=args.min_class_instances,
        exclude_classes=tuple(n.strip() for n in args.exclude_classes.split(",") if n.strip()),
        min_cutout_pixels=args.min_cutout_pixels, objects_per_image=tuple(args.objects), scale=tuple(args.scale),
        max_overlap=args.max_overlap, min_visible_fraction=args.min_visible_fraction,
        min_visible_pixels=args.min_visible_pixels, image_size=args.size, background_mode=args.background_mode,
        min_backgrounds=args.min_backgrounds, num_train=args.num_train, num_val=args.num_val,
        empty_fraction=args.empty_fraction, salient_root=None if args.no_salient else args.salient_root,
        salient_class=args.salient_class, salient_train_max_id=args.salient_train_max_id)


def format_summary(summary, out_dir, seconds):
    """The table the program prints: counts per split, then instances / pool cut-outs per class."""
    rows = [("images", "images"), ("  without objects", "images_without_objects"), ("backgrounds", "backgrounds"),
            ("dropped objects", "dropped_objects"), ("instances", "instances")]
    width = max(len(n) + 2 for n in summary["classes"] + [r[0] for r in rows])
    splits = summary["splits"]
    lines = [f"Wrote {out_dir} in {seconds:.1f} s (a controlled benchmark, never a substitute for VOC/COCO figures)",
             f"{'':{width}}" + "".join(f"{s:>15}" for s in splits)]
    lines += [f"{label:{width}}" + "".join(f"{v[key]:>15}" for v in splits.values()) for label, key in rows]
    lines += [f"{'  ' + n:{width}}" + "".join(f"{v['instances_per_class'][n]:>8} / {v['cutouts_per_class'][n]:<4}"
                                              for v in splits.values()) for n in summary["classes"]]
    skipped = ", ".join(f"{n} {k}" for k, n in summary["skipped"]["counts"].items()) or "none"
    lines.append(f"(per class: instances / cut-outs in its pool); skipped source images: {skipped}")
    return "\n".join(lines)


def main(argv=None):
    """Run the program; returns the summary of :func:`wsis.data.synthetic.build_copy_paste`."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()
    sources = {"train": (args.train_json, args.train_images), "val": (args.val_json, args.val_images)}
    try:
        summary = build_copy_paste(sources, build_config(args), args.out, progress=not args.no_progress,
                                   overwrite=args.overwrite)
    except (CopyPasteError, AnnotationError, ConversionError) as e:
        sys.exit(f"error: {e}")
    print(format_summary(summary, args.out, time.perf_counter() - start))
    return summary


if __name__ == "__main__":
    main()
