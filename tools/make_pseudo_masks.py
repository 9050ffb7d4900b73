#!/usr/bin/env python
"""Generate pseudo masks with any registered generator: ``python tools/make_pseudo_masks.py --help``
(the program is :mod:`wsis.cli.make_pseudo_masks`, importable so that detectron2's ``launch`` can start it)."""
from wsis.cli.make_pseudo_masks import __doc__ as _doc  # noqa: F401
from wsis.cli.make_pseudo_masks import build_config, main, merge, parse_args, run  # noqa: F401

if __name__ == "__main__":
    main()
