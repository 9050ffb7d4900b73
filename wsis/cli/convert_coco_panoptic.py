"""
Convert a COCO panoptic set into a things + stuff instance set in two halves (:mod:`wsis.data.converters.
panoptic_halves`): the images sorted by id, first half "train", second half "val"; one annotation per panoptic
segment (exact RLE, box, area, iscrowd), per-image tags ``image_labels`` over all categories (COCO: 80 things + 53
stuff), true semantic maps (contiguous category + 1, void and crowd 255), images linked, never copied.

    python tools/convert_coco_panoptic.py  # $WSIS_DATASETS/coco_panoptic_val100 → datasets/coco_panoptic_val100_halves
    python tools/convert_coco_panoptic.py --source path/to/coco_panoptic_set --out datasets/my_halves

Writes annotations/instances_{train,val}.json, {train,val}/<file_name> (links), semantic/{train,val}/<image_id>.png
and params.json. Registered as coco_panoptic_halves_{train,val,train_tag,train_sem_seg,val_sem_seg}
(wsis.data.datasets.builtin, root $WSIS_PANOPTIC_HALVES). Running again with the same inputs does nothing; an output
converted from other inputs is refused unless --overwrite.
"""
import argparse
import logging
import os
import sys
import time

from wsis.data.coco_weak import AnnotationError
from wsis.data.converters.panoptic_halves import PANOPTIC_SPLITS, convert_panoptic_halves
from wsis.data.converters.voc_sbd import ConversionError

#: ``$WSIS_DATASETS``, else ``../shared/data`` next to the repository (this file is wsis/cli/convert_coco_panoptic.py)
DEFAULT_ROOT = os.environ.get("WSIS_DATASETS") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data"))
DEFAULT_OUT = os.path.join("datasets", "coco_panoptic_val100_halves")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=os.path.join(DEFAULT_ROOT, "coco_panoptic_val100"),
                   help="panoptic set folder: annotations/panoptic_val2017.json, annotations/panoptic_val2017/, "
                        "images/ (default: %(default)s)")
    p.add_argument("--json", default=None, help="panoptic json (default: SOURCE/annotations/panoptic_val2017.json)")
    p.add_argument("--panoptic-root", default=None, help="its PNGs (default: SOURCE/annotations/panoptic_val2017)")
    p.add_argument("--images", default=None, help="image folder (default: SOURCE/images)")
    p.add_argument("--splits", default=",".join(PANOPTIC_SPLITS),
                   help="comma-separated part names, in sorted image-id order (default: %(default)s)")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace a set converted from other inputs in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = p.parse_args(argv)
    args.json = args.json or os.path.join(args.source, "annotations", "panoptic_val2017.json")
    args.panoptic_root = args.panoptic_root or os.path.join(args.source, "annotations", "panoptic_val2017")
    args.images = args.images or os.path.join(args.source, "images")
    return args


def format_summary(result, out, seconds):
    """The table the program prints: per split images, annotations (things / stuff / crowd), categories present."""
    s = result["summary"]
    verb = f"Wrote {out} in {seconds:.1f} s" if result["written"] else f"{out} is up to date (nothing written)"
    lines = [f"{verb}: {s['categories']} categories ({s['thing_categories']} things + {s['stuff_categories']} stuff)",
             f"{'':24}" + "".join(f"{k:>12}" for k in s["splits"])]
    rows = [("images", "images"), ("annotations", "annotations"), ("  things", "thing_annotations"),
            ("  stuff", "stuff_annotations"), ("  crowd", "crowd_annotations"),
            ("thing classes present", "thing_categories_present"),
            ("stuff classes present", "stuff_categories_present")]
    lines += [f"{label:24}" + "".join(f"{v[key]:>12}" for v in s["splits"].values()) for label, key in rows]
    return "\n".join(lines)


def main(argv=None):
    """Run the program; returns the result of :func:`convert_panoptic_halves`."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
    start = time.perf_counter()
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    try:
        result = convert_panoptic_halves(args.json, args.panoptic_root, args.images, args.out, splits=splits,
                                         overwrite=args.overwrite, progress=not args.no_progress)
    except (ConversionError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    print(format_summary(result, args.out, time.perf_counter() - start))
    return result


if __name__ == "__main__":
    main()
