"""
WSPS pseudo labels from boxes (Li, Arnab & Torr, ECCV 2018, §3.2 and §3.4), detectron2-free.

- :mod:`.crop`: a box's resampled working window; :mod:`.grabcut`: GrabCut from a box; :mod:`.proposals`:
  Selective-Search grouping of Felzenszwalb superpixels, best-IoU proposal (MCG's stand-in);
- :mod:`.fusion`: GrabCut ∩ proposal with ignore regions and overlap rules; :mod:`.crf`: fusion + DenseCRF;
- :mod:`.generator`: the "wsps" generator of ``tools/make_pseudo_masks.py``;
- :mod:`.refine_round`: round k+1 labels from a trained model's predictions (§3.4), the "wsps_round" generator.
"""
from .fusion import IGNORE, Fusion, box_states, fuse
from .generator import WSPSGenerator
from .refine_round import WSPSRoundGenerator, load_predictions, refine_round

__all__ = ["IGNORE", "Fusion", "WSPSGenerator", "WSPSRoundGenerator", "box_states", "fuse", "load_predictions",
           "refine_round"]
