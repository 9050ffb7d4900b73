#!/usr/bin/env python
"""CCGR's bags from CAM peaks and proposals: ``python tools/make_ccgr_bags.py --help`` (the program is
:mod:`wsis.cli.make_ccgr_bags`)."""
from wsis.cli.make_ccgr_bags import __doc__ as _doc  # noqa: F401
from wsis.cli.make_ccgr_bags import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
