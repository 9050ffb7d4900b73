#!/usr/bin/env python
"""Compute CAM / Grad-CAM cues into a cue store: ``python tools/make_cues.py --help``
(the program is :mod:`wsis.cli.make_cues`, importable so that detectron2's ``launch`` can start it)."""
from wsis.cli.make_cues import __doc__ as _doc  # noqa: F401
from wsis.cli.make_cues import main, parse_args, run  # noqa: F401

if __name__ == "__main__":
    main()
