#!/usr/bin/env python
"""Convert PASCAL VOC 2012 + SBD instance annotations to a COCO instance json.

Example (the 10,582-image train_aug set and the 1,449-image val set)::

    python tools/convert_voc_sbd.py --voc-root datasets/VOCdevkit/VOC2012 \\
        --sbd-root datasets/benchmark_RELEASE/dataset --split train_aug --out datasets/voc_sbd/train_aug.json
    python tools/convert_voc_sbd.py --voc-root datasets/VOCdevkit/VOC2012 --split val --out datasets/voc_sbd/val.json

``file_name`` in the json is relative to ``VOC2012/JPEGImages`` (or SBD's ``dataset/img`` without ``--voc-root``);
see ``wsis.data.converters.voc_sbd`` for every layout decision.
"""
import argparse
import logging
import sys

from wsis.data.converters import VOC_SBD_SPLITS, ConversionError, convert_voc_sbd


def get_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--voc-root", help="VOCdevkit/VOC2012 (or VOCdevkit)")
    parser.add_argument("--sbd-root", help="benchmark_RELEASE/dataset (or benchmark_RELEASE)")
    parser.add_argument("--split", default="train_aug", choices=sorted(VOC_SBD_SPLITS))
    parser.add_argument("--out", required=True, help="output COCO json")
    parser.add_argument("--skip-bad", action="store_true", help="skip (and count) images with bad annotations")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = convert_voc_sbd(args.out, args.split, voc_root=args.voc_root, sbd_root=args.sbd_root,
                                  skip_bad=args.skip_bad, progress=not args.no_progress)
    except (ConversionError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {args.out}: {summary['num_images']} images, {summary['num_annotations']} instances; "
          f"image root {summary['image_root']}; skipped {len(summary['skipped'])} bad image(s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
