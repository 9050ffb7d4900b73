#!/usr/bin/env python
"""Semantic pseudo labels from a cue store: ``python tools/make_semantic_labels.py --help``
(the program is :mod:`wsis.cli.make_semantic_labels`)."""
from wsis.cli.make_semantic_labels import __doc__ as _doc  # noqa: F401
from wsis.cli.make_semantic_labels import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
