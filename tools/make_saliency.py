#!/usr/bin/env python
"""Salient-object maps of a dataset from a trained BoxCaseg model: ``python tools/make_saliency.py --help``
(the program is :mod:`wsis.cli.make_saliency`)."""
from wsis.cli.make_saliency import __doc__ as _doc  # noqa: F401
from wsis.cli.make_saliency import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
