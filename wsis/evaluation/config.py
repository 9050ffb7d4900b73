"""Config keys of the evaluation (``WSIS.EVAL``)."""
from wsis.core.config import defaults

__all__ = ['add_evaluation_config']


def add_evaluation_config(cfg):
    """Evaluation of instance masks (AP^r and COCO AP)."""
    ev = defaults(cfg, "WSIS", "EVAL")
    # IoU thresholds of the VOC/SDS-style AP^r; AP^r_vol (mean over 0.1..0.9) is always reported.
    ev.APR_IOU_THRESHOLDS = (0.25, 0.5, 0.7, 0.75)
    # Interpolation of the precision/recall curve: "voc" (VOC2010+ all points), "voc07" (11 points), "coco101".
    ev.APR_INTERPOLATION = "voc"
    # Also run Detectron2's COCOEvaluator (box and mask AP) on instance datasets.
    ev.COCO = True
