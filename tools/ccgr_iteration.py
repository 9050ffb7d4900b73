#!/usr/bin/env python
"""One CCGR iteration end to end (bags, MIL, segmentation, CCGR pseudo masks, Proxy Mask R-CNN), resumable:
``python tools/ccgr_iteration.py --help`` (the program is :mod:`wsis.cli.ccgr_iteration`)."""
from wsis.cli.ccgr_iteration import __doc__ as _doc  # noqa: F401
from wsis.cli.ccgr_iteration import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
