"""Config keys of the weak-label data layer (``WSIS.DATA``)."""
from wsis.core.config import defaults

__all__ = ['add_weak_data_config']


def add_weak_data_config(cfg):
    """Weak annotations and pseudo masks fed to training."""
    d = defaults(cfg, "WSIS", "DATA")
    # Pseudo-mask store files (wsis.data.pseudo_store format) merged into the training dicts: one file for all of
    # DATASETS.TRAIN, or one per DATASETS.TRAIN entry (same order). Empty: train on the annotations as registered.
    d.PSEUDO_MASKS = ()
    # Fail when an image of a training set has no record in its pseudo-mask file (else: its masks are invalid).
    d.PSEUDO_MASKS_REQUIRE_ALL = False
    # Keep the registered (real) masks of the training sets where they exist, pseudo masks for the other instances:
    # the semi-supervised setting, which sets it explicitly; the count of such instances is logged. False (weak
    # training): every mask comes from WSIS.DATA.PSEUDO_MASKS, registered ones never leak in.
    d.KEEP_GT_MASKS = False
    # Folders of semantic label maps <image_id>.png (uint8: 0 background, class + 1, 255 ignore; e.g. pseudo labels
    # of tools/make_semantic_labels.py) attached to DATASETS.TRAIN as "sem_seg_file_name", for a SemanticSegmentor:
    # one folder for all of DATASETS.TRAIN or one per entry (same order). Empty: the registered maps, if any.
    d.SEMANTIC_LABELS = ()
    # The method's loaders and evaluators in WSISTrainer (a wsis.engine.LOADERS_REGISTRY name); "auto": the entry
    # that claims MODEL.META_ARCHITECTURE (BoxCaseg's crops for "BoxCaseg"), else "WeakInstanceLoaders".
    d.LOADERS = "auto"
