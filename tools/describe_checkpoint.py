#!/usr/bin/env python
"""Print what a wsis checkpoint was trained on: ``python tools/describe_checkpoint.py --help``
(the program is :mod:`wsis.cli.describe_checkpoint`)."""
import sys

from wsis.cli.describe_checkpoint import main

if __name__ == "__main__":
    sys.exit(main())
