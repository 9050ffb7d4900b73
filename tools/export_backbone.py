#!/usr/bin/env python
"""Export a checkpoint's backbone as initial weights for another model: ``python tools/export_backbone.py --help``
(the program is :mod:`wsis.cli.export_backbone`)."""
import sys

from wsis.cli.export_backbone import main

if __name__ == "__main__":
    sys.exit(main())
