"""
The pseudo-mask store: the versioned file of pseudo masks that sits between pipeline stages (format in
:mod:`.format`). Weak labels → a generator → **pseudo masks** (:class:`PseudoMaskWriter`, resumable) →
:func:`load_pseudo_masks` (validated) → :func:`attach_pseudo_masks` at dataset registration → training → the next
round. Detectron2-free.
"""
from wsis.core.masks import decode_mask, encode_mask

from .attach import attach_pseudo_masks
from .format import (
    FORMAT,
    FORMAT_VERSION,
    JOURNAL_SUFFIX,
    PseudoMaskError,
    make_provenance,
    source_hash_of_dicts,
    source_hash_of_file,
)
from .reader import load_pseudo_masks
from .writer import PseudoMaskWriter

__all__ = ["FORMAT", "FORMAT_VERSION", "JOURNAL_SUFFIX", "PseudoMaskError", "encode_mask", "decode_mask",
           "source_hash_of_file", "source_hash_of_dicts", "make_provenance", "PseudoMaskWriter", "load_pseudo_masks",
           "attach_pseudo_masks"]
