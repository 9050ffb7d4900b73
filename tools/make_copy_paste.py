#!/usr/bin/env python
"""Build the controlled copy-paste benchmark set: ``python tools/make_copy_paste.py --help``
(the program is :mod:`wsis.cli.make_copy_paste`)."""
from wsis.cli.make_copy_paste import __doc__ as _doc  # noqa: F401
from wsis.cli.make_copy_paste import build_config, format_summary, main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
