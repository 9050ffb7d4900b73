#!/usr/bin/env python
"""Convert a COCO panoptic set into a things + stuff instance set in train / val halves:
``python tools/convert_coco_panoptic.py --help`` (the program is :mod:`wsis.cli.convert_coco_panoptic`)."""
from wsis.cli.convert_coco_panoptic import __doc__ as _doc  # noqa: F401
from wsis.cli.convert_coco_panoptic import format_summary, main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
