"""
CCGR's bags (the MIL branch's training data): the peaks of each image's tagged classes in its CAM cues
(``tools/make_cues.py``), and for each peak the proposals that hold it and no other peak of its class, the 10 best by
Eq. 4, written as a bag file (detectron2's proposal pickle + ``bag_index`` / ``bag_labels``) for
``WSIS.CCGR.BAGS``.

    python tools/make_ccgr_bags.py --json datasets/copy_paste_coco_tiny/annotations/instances_train.json \\
        --images datasets/copy_paste_coco_tiny/train --cues output/bench_cam/copy_paste/cues_train_cam \\
        --out output/ccgr/bags_copy_paste_train.pkl
    python tools/make_ccgr_bags.py ... --proposals proposals.pkl --objectness proposals  # your proposals (MCG, ...)
    python tools/make_ccgr_bags.py ... --save-proposals proposals.pkl   # keep the grouping's for later iterations

Later iterations ("the bounding boxes from the IS branch are used as the bags"): --predictions instead of --cues, the
instance branch's predictions on the images (tools/infer_train_set.py); each box scoring ≥ --score-thresh makes a
bag of its 10 proposals of highest IoU, labelled with the box's class:

    python tools/make_ccgr_bags.py --json ... --images ... --predictions is_predictions.pth \
        --proposals proposals.pkl --out bags_iteration2.pkl

Without --proposals the boxes of the library's Selective-Search-style grouping of the whole image are used
(wsis.methods.ccgr.proposals). Eq. 4's foreground O is the foreground of a semantic label folder with
--foreground-labels (the paper's: AffinityNet's segmentation map; tools/ccgr_iteration.py passes the first
segmentation labels), else the largest of the image's cue maps. Eq. 4's B_S is O's centre-context gap by default
(--objectness contrast: the grouping has no learned objectness, and with B_S = 0 the parts inside an object rank
first); pass --objectness proposals with scored proposals such as MCG's. Images without tags, cues, label map or
peaks (or boxes) get no bag (counted).
"""
import argparse
import logging
import os
import sys

from wsis.data.coco_weak import AnnotationError, load_coco_instances
from wsis.data.cue_store import CueStore, CueStoreError
from wsis.data.predictions import read_predictions
from wsis.methods.ccgr.bag_file import read_proposal_file
from wsis.methods.ccgr.bag_job import make_bags
from wsis.pseudo.job import setup_logging

logger = logging.getLogger("wsis.make_ccgr_bags")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="COCO json of the images (tags: image_labels or annotations)")
    p.add_argument("--images", required=True, help="image folder of --json")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cues", help="cue store of the images (tools/make_cues.py --out): peak bags")
    src.add_argument("--predictions", help="the instance branch's predictions (instances_predictions.pth or COCO "
                     "results json, dataset category ids): box bags")
    p.add_argument("--score-thresh", type=float, default=0.5,
                   help="with --predictions: the least score of a box that makes a bag (default: %(default)s)")
    p.add_argument("--out", required=True, help="the bag file to write (.pkl)")
    p.add_argument("--proposals", default=None, help="detectron2 proposal pickle (ids, boxes, objectness_logits)")
    p.add_argument("--save-proposals", default=None, metavar="PKL",
                   help="also write the proposals used as a detectron2 proposal pickle")
    p.add_argument("--objectness", choices=("contrast", "proposals", "none"), default="contrast",
                   help="B_S of Eq. 4: the centre-context gap of Eq. 4's O (for proposals without a learned "
                   "objectness), the proposals' scores (MCG's, ...), or 0 (default: %(default)s)")
    p.add_argument("--foreground-labels", default=None, metavar="DIR",
                   help="with --cues: semantic label maps <image_id>.png whose foreground is Eq. 4's O (default: "
                   "the largest of the image's cue maps)")
    p.add_argument("--top-k", type=int, default=10, help="proposals per bag (default: %(default)s)")
    p.add_argument("--penalty", type=float, default=0.1, help="Eq. 4's background weight (default: %(default)s)")
    p.add_argument("--min-peak", type=float, default=0.5,
                   help="a peak must reach this fraction of its map's max (default: %(default)s; 0: PRM's rule alone)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    setup_logging()
    try:
        dicts, meta = load_coco_instances(args.json, args.images, supervision="tag", on_bad="warn")
        cues = CueStore(args.cues) if args.cues else None
        predictions = (read_predictions(args.predictions, meta["thing_dataset_id_to_contiguous_id"])
                       if args.predictions else None)
        proposals = read_proposal_file(args.proposals) if args.proposals else None
        done, skipped = make_bags(dicts, cues, args.out, proposals, args.top_k, args.penalty, args.objectness,
                                  args.min_peak, workers=args.workers, progress=not args.no_progress,
                                  predictions=predictions, score_thresh=args.score_thresh,
                                  save_proposals=args.save_proposals, foreground_labels=args.foreground_labels)
    except (ValueError, KeyError, FileNotFoundError, CueStoreError, AnnotationError) as e:
        sys.exit(f"error: {e}")
    n_bags = sum(len(b["bag_labels"]) for b in done.values())
    n_props = sum(len(b["boxes"]) for b in done.values())
    stats = {"images": len(dicts), "images_with_bags": len(done), "bags": n_bags, "skipped": len(skipped),
             "proposals_per_bag": n_props / max(n_bags, 1)}
    logger.info(f"{args.out}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                            for k, v in stats.items()))
    for _, reason in skipped[:5]:
        logger.warning(f"skipped {reason}")
    if len(skipped) > 5:
        logger.warning(f"... and {len(skipped) - 5} more skipped images")
    return stats
