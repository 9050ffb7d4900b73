#!/usr/bin/env python
"""Convert a salient-object folder (images + binary masks) to a COCO instance json, category "salient object".

Example (BoxCaseg's DUTS-Single rule: keep images with exactly one salient object)::

    python tools/convert_salient.py --images datasets/DUTS-TR/DUTS-TR-Image --masks datasets/DUTS-TR/DUTS-TR-Mask \\
        --out datasets/duts_single.json --single-object

``file_name`` is relative to ``--images``; see ``wsis.data.converters.salient`` for the object-counting rule.
"""
import argparse
import logging
import sys

from wsis.data.converters import ConversionError, salient_folder_to_coco


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="image directory (.jpg/.jpeg/.png)")
    parser.add_argument("--masks", required=True, help="mask directory, same stems as the images")
    parser.add_argument("--out", required=True, help="output COCO json")
    parser.add_argument("--single-object", action="store_true", help="keep only images with one salient object")
    parser.add_argument("--per-component", action="store_true", help="one annotation per object, not their union")
    parser.add_argument("--threshold", type=int, default=128, help="foreground if mask value >= this (0..255)")
    parser.add_argument("--min-area-fraction", type=float, default=0.01,
                        help="components smaller than this fraction of the image are ignored specks")
    parser.add_argument("--skip-missing", action="store_true", help="skip unpaired images/masks instead of failing")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        coco = salient_folder_to_coco(
            args.images, args.masks, args.out, single_object_only=args.single_object, per_component=args.per_component,
            threshold=args.threshold, min_area_fraction=args.min_area_fraction, skip_missing=args.skip_missing,
            progress=not args.no_progress,
        )
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {args.out}: {len(coco['images'])} images, {len(coco['annotations'])} annotations.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
