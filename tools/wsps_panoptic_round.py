#!/usr/bin/env python
"""The next round of WSPS's panoptic labels from a trained model (§3.4): ``python tools/wsps_panoptic_round.py
--help`` (the program is :mod:`wsis.cli.wsps_panoptic_round`; needs detectron2)."""
from wsis.cli.wsps_panoptic_round import __doc__ as _doc  # noqa: F401
from wsis.cli.wsps_panoptic_round import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
