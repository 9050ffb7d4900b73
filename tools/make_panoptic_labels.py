#!/usr/bin/env python
"""Iteration-0 panoptic pseudo labels (things from boxes, stuff from tags): ``python tools/make_panoptic_labels.py
--help`` (the program is :mod:`wsis.cli.make_panoptic_labels`)."""
from wsis.cli.make_panoptic_labels import __doc__ as _doc  # noqa: F401
from wsis.cli.make_panoptic_labels import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
