#!/usr/bin/env python
"""A trained DSRG model's final labels as semantic pseudo-label PNGs: ``python tools/make_dsrg_labels.py --help``
(the program is :mod:`wsis.cli.make_dsrg_labels`)."""
from wsis.cli.make_dsrg_labels import __doc__ as _doc  # noqa: F401
from wsis.cli.make_dsrg_labels import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
