"""Config keys of CAM / Grad-CAM (``MODEL.CAM``: the classifier and its cues; ``WSIS.CAM``: semantic pseudo labels)."""
from wsis.core.config import defaults

__all__ = ["add_cam_config"]


def add_cam_config(cfg):
    """
    The image-tag classifier ``CAMClassifier`` (IRNet §3: GAP + 1×1 classifier without bias, multilabel soft-margin
    loss), its localisation cues (CAM, IRNet's multi-scale + flip fusion; Grad-CAM, WSPS §3.3) and the semantic
    pseudo labels made from them. The backbone is any of detectron2's registry (``MODEL.BACKBONE.NAME``); IRNet's
    ResNet-50 at stride 16 is ``MODEL.RESNETS.RES5_DILATION 2``, its frozen conv1 + layer1 + layer2 is
    ``MODEL.BACKBONE.FREEZE_AT 3`` (projects/CAM/configs/Base-CAM.yaml).
    """
    c = defaults(cfg, "MODEL", "CAM")
    # The backbone feature the classifier and the CAMs read (IRNet: the last stage, "res5").
    c.IN_FEATURE = "res5"
    # Classes of the image tags (contiguous ids of the dataset dicts' "image_labels").
    c.NUM_CLASSES = 80
    # Learning-rate multiplier of the classifier's parameters (IRNet: 10× the backbone's).
    c.CLASSIFIER_LR_MULTIPLIER = 10.0
    # An image with no tag: "skip" (no classifier loss from it; its pseudo labels are all background) or
    # "negative" (every class is a negative of it).
    c.UNTAGGED = "skip"
    # Cues: "cam" (IRNet, Eq. 1) or "gradcam" (WSPS §3.3), fused over SCALES (× FLIP) as IRNet's make_cam and
    # stored at CUE_STRIDE (maps of ceil(H / stride) × ceil(W / stride)).
    c.CUE = "cam"
    c.SCALES = (1.0, 0.5, 1.5, 2.0)
    c.FLIP = True
    c.CUE_STRIDE = 4
    # Classes that get a cue: "tags" (the image's tags, training images) or "predicted" (score > SCORE_THRESHOLD,
    # test images without tags).
    c.CUE_CLASSES = "tags"
    c.SCORE_THRESHOLD = 0.5

    s = defaults(cfg, "WSIS", "CAM")
    # Semantic pseudo labels from cues (uint8 PNGs: 0 background, class + 1, 255 ignore):
    # "irnet" (IRNet §4.2: confident fg > FG_THRESHOLD and bg < BG_THRESHOLD, each CRF-refined, ignore between) or
    # "wsps" (WSPS §3.3: each class above WSPS_THRESHOLD × its max, smaller area first, the rest REST).
    s.LABELS = "irnet"
    s.FG_THRESHOLD = 0.30
    s.BG_THRESHOLD = 0.05
    s.CRF = True
    s.WSPS_THRESHOLD = 0.5
    s.REST = "background"
    return cfg
