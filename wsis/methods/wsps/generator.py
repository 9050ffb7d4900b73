"""The "wsps" pseudo-mask generator: GrabCut ∩ segment proposal per box, fused with ignore regions (WSPS §3.2)."""
import logging

import numpy as np

from wsis.core.config import node_to_kwargs
from wsis.core.crf import DenseCRFParams
from wsis.core.boxes import annotation_extent
from wsis.pseudo.registry import register_generator
from wsis.pseudo.records import image_record, read_image
from .config import BOX_CRF_DEFAULTS, GRABCUT_DEFAULTS, PROPOSAL_DEFAULTS, VOTE_DEFAULTS
from .crf import crf_box_states
from .crop import BoxWindow
from .fusion import UNSURE, box_states, fuse
from .grabcut import grabcut_box
from .proposals import box_proposal
from .vote import tightest, vote_fuse

logger = logging.getLogger(__name__)


@register_generator("wsps")
class WSPSGenerator:
    """
    Box pseudo labels from WSPS's two estimates (Li, Arnab & Torr, ECCV 2018, §3.2, Fig. 2).

    Per non-crowd box: GrabCut (:mod:`.grabcut`) and the best segment proposal (:mod:`.proposals`). ``refine``
    says how they become labels: ``"vote"`` (default, :mod:`.vote`: the box's inscribed ellipse casts a third vote,
    the smallest claimant owns an overlap and the others ignore it); ``"none"`` (WSPS's iteration-0 fusion,
    :mod:`.fusion`: both say foreground → the box's class, disagreement → ignore, same-class overlaps ignored);
    ``"crf"`` (that fusion with its ignored pixels filled by DenseCRF, :mod:`.crf`).
    A box whose GrabCut fails (OpenCV raises for windows too small or uniform for its colour models) has no
    estimate: its pixels stay unsure (ignored unless another box claims them — under "none" / "crf" a smaller box —
    and never refined into a mask), its instance is stored invalid with score 0, and a warning names the image and
    annotation.

    Args:
        refine (str): "vote", "none" (WSPS's iteration-0 labels, with ignore) or "crf" (fusion + DenseCRF).
        vote (dict): ``refine="vote"``'s ``ellipse`` (1.0), ``tight`` (0.8; > 1 turns the tight rule off) and
            ``grabcut_runs`` ([[core, box_size], ...]: the GrabCut runs besides ``grabcut``'s, the tightest of all
            being the box's estimate), :mod:`.vote`.
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

    def __init__(self, refine="vote", cross_class="smallest", grabcut=None, proposals=None, crf=None, seed=0,
                 vote=None):
        if refine not in ("vote", "none", "crf"):
            raise ValueError(f"refine must be 'vote', 'none' or 'crf', got {refine!r}")
        if cross_class not in ("smallest", "ignore"):
            raise ValueError(f"cross_class must be 'smallest' or 'ignore', got {cross_class!r}")
        gc, pr, cr, vo = (node_to_kwargs(d) for d in (GRABCUT_DEFAULTS, PROPOSAL_DEFAULTS, BOX_CRF_DEFAULTS,
                                                      VOTE_DEFAULTS))
        for name, given, defaults in (("grabcut", grabcut, gc), ("proposals", proposals, pr), ("crf", crf, cr),
                                      ("vote", vote, vo)):
            unknown = set(given or {}) - set(defaults)
            if unknown:
                raise ValueError(f"unknown {name} parameter(s) {sorted(unknown)}; known: {sorted(defaults)}")
            defaults.update(given or {})
        pr["strategies"] = [[str(s), float(k)] for s, k in pr["strategies"]]
        vo["grabcut_runs"] = [[float(c), int(b)] for c, b in vo["grabcut_runs"]]
        vo["ellipse"], vo["tight"] = float(vo["ellipse"]), float(vo["tight"])
        if not vo["ellipse"] > 0 or not vo["tight"] >= 0:
            raise ValueError(f"vote needs ellipse > 0 and tight >= 0, got {vo['ellipse']} and {vo['tight']}")
        self.params = {"refine": refine, "cross_class": cross_class, "grabcut": gc, "proposals": pr, "crf": cr,
                       "seed": int(seed), "vote": vo}

    @classmethod
    def from_config(cls, cfg, metadata=None):
        """From ``WSIS.PSEUDO.WSPS`` (:func:`wsis.methods.wsps.config.add_wsps_config`)."""
        return cls(**node_to_kwargs(cfg.WSIS.PSEUDO.WSPS))

    # ------------------------------------------------------------------------------------------------ components
    def grabcut(self, image, box):
        """GrabCut foreground over the box's pixels ((y1 - y0, x1 - x0) bool)."""
        return grabcut_box(image, box, seed=self.params["seed"], **self.params["grabcut"])

    def tight_grabcut(self, image, box, first):
        """``refine="vote"``: the tightest (:func:`.vote.tightest`) of ``first`` (:meth:`grabcut`'s) and the runs of
        ``vote.grabcut_runs`` (those OpenCV cannot run are left out)."""
        runs = [first]
        for core, box_size in self.params["vote"]["grabcut_runs"]:
            params = dict(self.params["grabcut"], core=core, box_size=box_size)
            runs.append(grabcut_box(image, box, seed=self.params["seed"], **params))
        return tightest([r for r in runs if r is not None])

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

    def label(self, image, boxes, classes, estimates, crowd_boxes=()):
        """
        (GrabCut, proposal) per box (None: no estimate, GrabCut failed) → :class:`.fusion.Fusion` by ``refine``.
        """
        if self.params["refine"] == "vote":
            v = self.params["vote"]
            return vote_fuse(image.shape[:2], boxes, classes, estimates, crowd_boxes, v["ellipse"], v["tight"])
        failed = {i for i, e in enumerate(estimates) if e is None}
        states = [np.full((b[3] - b[1], b[2] - b[0]), UNSURE, dtype=np.uint8) if e is None else box_states(*e)
                  for b, e in zip(boxes, estimates)]
        if self.params["refine"] == "crf":
            states = self.refine_states(image, boxes, states, failed)
        return fuse(image.shape[:2], boxes, classes, states, self.params["cross_class"], crowd_boxes)

    # ---------------------------------------------------------------------------------------------------- record
    def __call__(self, dataset_dict):
        image = read_image(dataset_dict)
        h, w = image.shape[:2]
        anns = [a for a in dataset_dict["annotations"] if not a.get("iscrowd", 0)]
        crowd = [annotation_extent(a, h, w) for a in dataset_dict["annotations"] if a.get("iscrowd", 0)]
        boxes = [annotation_extent(a, h, w) for a in anns]
        estimates, failed = [], []
        for i, (a, b) in enumerate(zip(anns, boxes)):
            fg = self.grabcut(image, b)
            if fg is None:
                failed.append(i)
                logger.warning(f"{dataset_dict['file_name']} (image id {dataset_dict['image_id']}): GrabCut failed on "
                               f"annotation id {a.get('id')} (box {b}); its mask is stored invalid")
                estimates.append(None)
                continue
            if self.params["refine"] == "vote":
                fg = self.tight_grabcut(image, b, fg)
            estimates.append((fg, self.proposal(image, b)))
        f = self.label(image, boxes, [a["category_id"] for a in anns], estimates, crowd)
        valid = [i not in failed for i in range(len(anns))]
        scores = [0.0 if i in failed else 1.0 for i in range(len(anns))]
        return image_record(dataset_dict, anns, f.masks, f.instance_ignore, f.image_ignore, valid=valid,
                            scores=scores)
