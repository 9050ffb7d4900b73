"""
The localisation-cue store: per image, one float map per class present at a stated stride (CAM, IRNet and DSRG
start from them), as a versioned folder (format in :mod:`.format`). Image tags → a classifier → **cues**
(:class:`CueWriter`, resumable) → :func:`load_cues` / :class:`CueStore` (validated, read lazily) → seeds, IR labels,
region growing. Provenance as the pseudo-mask store's (:func:`make_provenance`). Detectron2-free.
"""
from wsis.data.pseudo_store.format import make_provenance

from .format import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_NAME,
    JOURNAL_NAME,
    MAPS_DIR,
    CueStoreError,
    cue_map_shape,
)
from .reader import CueStore, load_cues, read_cue_map, read_cue_record
from .writer import CueWriter

__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX_NAME", "JOURNAL_NAME", "MAPS_DIR", "CueStoreError", "cue_map_shape",
           "make_provenance", "CueWriter", "load_cues", "read_cue_map", "read_cue_record", "CueStore"]
