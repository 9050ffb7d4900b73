"""Config keys of WSPS's panoptic network (``MODEL.WSPS_PANOPTIC``, ``MODEL.PSP_HEAD``) and of its training labels
(``WSIS.DATA.PANOPTIC_LABELS``)."""
from wsis.core.config import defaults, set_defaults

from .instance_crf import WSPS_INSTANCE_CRF

__all__ = ["add_panoptic_config"]


def add_panoptic_config(cfg):
    """
    ``WSPSPanopticNetwork`` (WSPS §3.5): a semantic head (``MODEL.SEM_SEG_HEAD``, e.g. ``PSPSemSegHead``) over
    ``MODEL.SEM_SEG_HEAD.NUM_CLASSES`` classes, **things first**: channels 0..T−1 are the detector's classes
    (``MODEL.ROI_HEADS.NUM_CLASSES`` = T), T..C−1 the stuff classes (COCO panoptic's contiguous ids are so ordered);
    a detectron2 detector (``MODEL.PROPOSAL_GENERATOR`` + ``MODEL.ROI_HEADS``, boxes only) trained on the thing
    boxes; the instance CRF over its detections and one dummy detection per stuff class.
    """
    c = defaults(cfg, "MODEL", "WSPS_PANOPTIC")
    # Training stage: False trains the semantic head and the detector (the paper's first stage); True adds the
    # instance CRF and its matched loss (§3.5), end to end.
    c.TRAIN_INSTANCE_CRF = False
    # The CRF's detections in training: "predicted" (the detector's, not backpropagated through: Fig. 5) or "gt"
    # (the image's thing boxes with score 1, for a detector that is not trained yet).
    c.TRAIN_DETECTIONS = "predicted"
    c.INSTANCE_LOSS_WEIGHT = 1.0
    # The CRF (Eq. 2-4): its map's stride in image pixels (the semantic probabilities and the image are
    # area-averaged to it); initial w1 / w2; under CRF the kernels, window (at the map), iterations and initial
    # kernel weights (DESIGN.md's DIN values: spatial 3, bilateral 4; θγ 3, θα 49, θβ 5; 3 iterations).
    c.CRF_STRIDE = 8
    c.W_BOX = 1.0
    c.W_GLOBAL = 1.0
    set_defaults(cfg, ("MODEL", "WSPS_PANOPTIC", "CRF"), WSPS_INSTANCE_CRF.to_dict())
    # s' of Eq. 3: "sigmoid" (sigmoid(2s − 1), Arnab & Torr's code) or "identity" (the paper's s).
    c.SCORE_TRANSFORM = "sigmoid"
    # Score of a thing segment: "semantic" (mean Q of its class over its mask, as the issue and §3.5 say) or
    # "detection" (its detection's score: Tab. 6's better ranking for things). Stuff segments score 1.
    c.THING_SCORE = "semantic"
    # Segments smaller than this many pixels (output resolution) become void.
    c.MIN_AREA = 0
    p = defaults(cfg, "MODEL", "PSP_HEAD")
    # PSPNet's pyramid pooling (Zhao et al. 2017): average pooling to bins × bins, 1×1 conv, upsampled, concatenated.
    p.BINS = (1, 2, 3, 6)
    p.CHANNELS = 128
    p.DROPOUT = 0.1
    d = defaults(cfg, "WSIS", "DATA")
    # Folders of panoptic labels (tools/make_panoptic_labels.py: <image_id>.png + panoptic.json in COCO's format)
    # attached to DATASETS.TRAIN for WSPSPanopticNetwork: one folder for all of them or one per entry.
    d.PANOPTIC_LABELS = ()
