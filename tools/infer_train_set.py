#!/usr/bin/env python
"""Save a trained model's instance predictions on a (training) dataset for the next round: ``python
tools/infer_train_set.py --help`` (the program is :mod:`wsis.cli.infer_train_set`)."""
from wsis.cli.infer_train_set import __doc__ as _doc  # noqa: F401
from wsis.cli.infer_train_set import main, parse_args  # noqa: F401

if __name__ == "__main__":
    main()
