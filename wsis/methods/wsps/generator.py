"""The "wsps" pseudo-mask generator: GrabCut ∩ segment proposal per box, fused with ignore regions (WSPS §3.2)."""
import logging

import numpy as np

from wsis.core.config import node_to_kwargs
from wsis.core.crf import DenseCRFParams
from wsis.core.boxes import annotation_extent
from wsis.pseudo.registry import register_generator
from wsis.pseudo.records import image_record, read_image
from .config import BOX_CRF_DEFAULTS, GRABCUT_DEFAULTS, PROPOSAL_DEFAULTS
from .crf import crf_box_states
from .crop import BoxWindow
from .fusion import UNSURE, box_states, fuse
from .grabcut import grabcut_box
from .proposals import box_proposal

logger = logging.getLogger(__name__)


@register_generator("wsps")
class WSPSGenerator:
    """
    WSPS box pseudo labels (Li, Arnab & Torr, ECCV 2018, §3.2, Fig. 2).

    Per non-crowd box: GrabCut (:mod:`.grabcut`) and the best segment proposal (:mod:`.proposals`); pixels where both
    say foreground get the box's class, disagreement inside the box is ignored, pixels in no box are background;
    overlaps follow :mod:`.fusion`. ``refine="crf"`` then fills the ignored pixels with DenseCRF (:mod:`.crf`).
    A box whose GrabCut fails (OpenCV raises for windows too small or uniform for its colour models) has no
    estimate: its pixels stay unsure (ignored unless a smaller box decides them, never refined into a mask), its
    instance is stored invalid with score 0, and a warning names the image and annotation.

    Args:
        refine (str): "none" (WSPS's iteration-0 labels, with ignore) or "crf" (fusion + DenseCRF).
        cross_class (str): "smallest" or "ignore" (:func:`.fusion.fuse`).
        grabcut (dict): ``iterations`` (5), ``init`` ("core"), ``core`` (0.4), ``margin`` (0.5), ``box_size`` (128).
        proposals (dict): ``strategies`` ([[colour space, k], ...]), ``sigma`` (0.8), ``min_size`` (20),
            ``margin`` (0.5), ``box_size`` (64).
        crf (dict): :class:`~wsis.core.crf.DenseCRFParams` fields (DeepLab's by default) plus ``lut``,
            ``lut_ellipse``, ``outside``, ``threshold``, ``box_size`` of :func:`.crf.crf_box_states`.
        seed (int): OpenCV's RNG seed, set before every GrabCut call (results do not depend on worker order).
    """

    #: what a warning about instances without a valid mask points at
    quality_hint = "the GrabCut failures warned about above (those boxes are stored invalid)"

    def __init__(self, refine="crf", cross_class="smallest", grabcut=None, proposals=None, crf=None, seed=0):
        if refine not in ("none", "crf"):
            raise ValueError(f"refine must be 'none' or 'crf', got {refine!r}")
        if cross_class not in ("smallest", "ignore"):
            raise ValueError(f"cross_class must be 'smallest' or 'ignore', got {cross_class!r}")
        gc, pr, cr = (node_to_kwargs(d) for d in (GRABCUT_DEFAULTS, PROPOSAL_DEFAULTS, BOX_CRF_DEFAULTS))
        for name, given, defaults in (("grabcut", grabcut, gc), ("proposals", proposals, pr), ("crf", crf, cr)):
            unknown = set(given or {}) - set(defaults)
            if unknown:
                raise ValueError(f"unknown {name} parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
            defaults.update(given or {})
        pr["strategies"] = [[str(s), float(k)] for s, k in pr["strategies"]]
        self.params = {"refine": refine, "cross_class": cross_class, "grabcut": gc, "proposals": pr, "crf": cr,
                       "seed": int(seed)}

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """From ``WSIS.PSEUDO.WSPS`` (:func:`wsis.methods.wsps.config.add_wsps_config`)."""
        return cls(**node_to_kwargs(cfg.WSIS.PSEUDO.WSPS))

    # ------------------------------------------------------------------------------------------------ components
    def grabcut(self, image, box):
        """GrabCut foreground over the box's pixels ((y1 - y0, x1 - x0) bool)."""
        return grabcut_box(image, box, seed=self.params["seed"], **self.params["grabcut"])

    def proposal(self, image, box):
        """The proposal with the highest IoU with the box, cut to the box's pixels ((y1 - y0, x1 - x0) bool)."""
        p = self.params["proposals"]
        win = BoxWindow(image.shape, box, margin=p["margin"], box_size=p["box_size"])
        mask, _ = box_proposal(win.crop(image), win.box_mask(), [tuple(s) for s in p["strategies"]], p["sigma"],
                               p["min_size"])
        return win.to_box(mask)

    def refine_states(self, image, boxes, states, failed=()):
        """Fusion + DenseCRF: the boxes' states after the CRF (FG / BG only); boxes in ``failed`` keep theirs."""
        c = dict(self.params["crf"])
        extra = {k: c.pop(k) for k in ("lut", "lut_ellipse", "outside", "threshold", "box_size")}
        params = DenseCRFParams(**c)
        return [s if i in failed else crf_box_states(image, b, s, params, **extra)
                for i, (b, s) in enumerate(zip(boxes, states))]

    def label(self, image, boxes, classes, states, crowd_boxes=(), failed=()):
        """Fuse (and refine) states → :class:`.fusion.Fusion`; ``failed``: indices of boxes without an estimate."""
        if self.params["refine"] == "crf":
            states = self.refine_states(image, boxes, states, set(failed))
        return fuse(image.shape[:2], boxes, classes, states, self.params["cross_class"], crowd_boxes)

    # ---------------------------------------------------------------------------------------------------- record
    def __call__(self, dataset_dict):
        image = read_image(dataset_dict)
        h, w = image.shape[:2]
        anns = [a for a in dataset_dict["annotations"] if not a.get("iscrowd", 0)]
        crowd = [annotation_extent(a, h, w) for a in dataset_dict["annotations"] if a.get("iscrowd", 0)]
        boxes = [annotation_extent(a, h, w) for a in anns]
        states, failed = [], []
        for i, (a, b) in enumerate(zip(anns, boxes)):
            fg = self.grabcut(image, b)
            if fg is None:
                failed.append(i)
                logger.warning(f"{dataset_dict['file_name']} (image id {dataset_dict['image_id']}): GrabCut failed on "
                               f"annotation id {a.get('id')} (box {b}); its mask is stored invalid")
                states.append(np.full((b[3] - b[1], b[2] - b[0]), UNSURE, dtype=np.uint8))
            else:
                states.append(box_states(fg, self.proposal(image, b)))
        f = self.label(image, boxes, [a["category_id"] for a in anns], states, crowd, failed)
        valid = [i not in failed for i in range(len(anns))]
        scores = [0.0 if i in failed else 1.0 for i in range(len(anns))]
        return image_record(dataset_dict, anns, f.masks, f.instance_ignore, f.image_ignore, valid=valid,
                            scores=scores)
