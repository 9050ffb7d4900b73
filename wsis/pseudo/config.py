"""Config keys of the pseudo-mask generators that live in :mod:`wsis.pseudo` (``WSIS.PSEUDO.BOXFILL``)."""
from wsis.core.config import defaults

__all__ = ["add_pseudo_config"]


def add_pseudo_config(cfg):
    """The box-fill baseline (``tools/make_pseudo_masks.py --method boxfill``)."""
    b = defaults(cfg, "WSIS", "PSEUDO", "BOXFILL")
    # "keep": overlapping rectangles stay as they are; "smallest": each overlapping pixel goes to the smallest box.
    b.OVERLAP = "keep"
    return cfg
