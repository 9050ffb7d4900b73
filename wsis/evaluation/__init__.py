"""
Evaluation. The metric accumulators (AP^r, PQ, pseudo-mask quality, multi-label classification, CAM localisation) are pure NumPy/pycocotools; the Detectron2
evaluators around them live in :mod:`wsis.evaluation.evaluators` (imported explicitly, needs detectron2).
"""
from .ap_r import REPORT_IOU_THRESHOLDS, VOL_IOU_THRESHOLDS, InstanceAPAccumulator, average_precision
from .classification import class_average_precision, multilabel_metrics
from .localization import CAMThresholdSweep, ConfidentAreaAccumulator, cam_label_map, confident_area_scores
from .panoptic_quality import PQAccumulator, panoptic_id_to_rgb, panoptic_rgb_to_id
from .pseudo_eval import evaluate_pseudo_masks
from .pseudo_quality import PseudoInstanceQualityAccumulator, PseudoPixelQualityAccumulator, masked_iou

__all__ = [
    "InstanceAPAccumulator",
    "average_precision",
    "REPORT_IOU_THRESHOLDS",
    "VOL_IOU_THRESHOLDS",
    "PQAccumulator",
    "panoptic_rgb_to_id",
    "panoptic_id_to_rgb",
    "PseudoInstanceQualityAccumulator",
    "PseudoPixelQualityAccumulator",
    "masked_iou",
    "evaluate_pseudo_masks",
    "class_average_precision",
    "multilabel_metrics",
    "CAMThresholdSweep",
    "ConfidentAreaAccumulator",
    "cam_label_map",
    "confident_area_scores",
]
