"""
One CCGR iteration end to end ("In each iteration, the MIL, SS, and IS branches are sequentially trained"), each
stage a wsis command (its ``main``, in this process, so datasets registered by the caller are visible; ``--dry-run``
prints them as shell commands), resumable: a stage whose output exists is skipped, a killed training resumes from
its last checkpoint (``--resume``), the pseudo-mask store from its journal. From Python, after registering your
datasets: ``wsis.cli.ccgr_iteration.main([...])``.

    python tools/ccgr_iteration.py --work output/ccgr/run --iteration 1 --dataset copy_paste_train_tag \\
        --cues output/bench_cam/copy_paste/cues_train_cam \\
        --semantic-labels output/bench_dsrg/copy_paste/labels_train_final
    python tools/ccgr_iteration.py --work output/ccgr/run --iteration 2 --dataset copy_paste_train_tag

Stages, under ``<work>/iteration_<k>/``:

1. ``bags.pkl``: iteration 1, the peaks of the CAM cues and their proposals (Eq. 4, with ``--semantic-labels`` as
   its O; the grouping's proposals are kept in ``<work>/proposals.pkl``); later, the boxes of iteration k − 1's
   instance branch and their top-10 proposals by IoU (``tools/make_ccgr_bags.py``).
2. ``mil/``: the MIL branch (``--mil-config``) on the bags; ``mil_boxes.pth``: one box per bag on the images.
3. the segmentation branch's labels: iteration 1, ``--semantic-labels`` (a weakly supervised semantic method's
   maps: the paper uses AffinityNet; DSRG's or IRNet's here); later ``semantic/``, the union of iteration k − 1's
   instance masks per class. ``ss/``: the segmentation branch (``--ss-config``) trained on them.
4. ``pseudo/``: the MIL boxes refined by CCGR on the segmentation branch's maps and cropped from it
   (``tools/make_pseudo_masks.py --method ccgr``).
5. ``is/``: the instance branch, Proxy Mask R-CNN (``--is-config``) on those masks; ``is_predictions.pth``: its
   predictions on the training images, the input of iteration k + 1.

From iteration 2 on each branch starts from its checkpoint of iteration k − 1 (``--from-scratch``: from its config's
``MODEL.WEIGHTS``). ``--mil-opts``, ``--ss-opts``, ``--is-opts`` add config overrides (one quoted string each,
e.g. "SOLVER.MAX_ITER 100"); a ``MODEL.WEIGHTS`` among them is the branch's initial weights in iteration 1 (and with
``--from-scratch``): later iterations still start from iteration k − 1. ``--num-gpus`` goes to the three trainings;
``--dry-run`` prints the commands.
"""
import argparse
import importlib
import logging
import os
import shlex
import sys
import time

from wsis.model_zoo import get_config_file

logger = logging.getLogger("wsis.ccgr_iteration")



def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="the run's folder (every iteration's outputs go under it)")
    p.add_argument("--iteration", type=int, required=True, help="k ≥ 1; k > 1 needs iteration k − 1 done")
    p.add_argument("--dataset", required=True, help="the registered training set with tags, e.g. copy_paste_train_tag")
    p.add_argument("--cues", help="iteration 1: the CAM cue store of the training images (tools/make_cues.py)")
    p.add_argument("--semantic-labels", help="iteration 1: the segmentation branch's label folder")
    p.add_argument("--proposals", help="a detectron2 proposal pickle of the images (default: the grouping's, made in "
                   "iteration 1 as <work>/proposals.pkl)")
    p.add_argument("--objectness", choices=("contrast", "proposals", "none"), default="contrast",
                   help="iteration 1: B_S of Eq. 4 (tools/make_ccgr_bags.py --objectness; 'proposals' for scored "
                   "proposals such as MCG's; default: %(default)s)")
    for branch, name in (("mil", "mil_R18_scratch_copy_paste"), ("ss", "semantic_psp_R18_scratch_copy_paste"),
                         ("is", "mask_rcnn_R18_FPN_scratch_copy_paste")):
        p.add_argument(f"--{branch}-config", default=get_config_file(f"CCGR/{name}.yaml"),
                       help=f"the {branch.upper()} branch's config (default: the shipped CCGR/{name}.yaml)")
    for branch in ("mil", "ss", "is"):
        p.add_argument(f"--{branch}-opts", default="", help=f"config overrides of the {branch.upper()} branch")
    p.add_argument("--bag-score-thresh", type=float, default=0.5,
                   help="later iterations: least score of an instance-branch box that makes a bag (%(default)s)")
    p.add_argument("--label-score-thresh", type=float, default=0.5,
                   help="later iterations: least score of an instance mask in the segmentation labels (%(default)s)")
    p.add_argument("--from-scratch", action="store_true", help="later iterations: train every branch from its "
                   "config's MODEL.WEIGHTS (default: from the same branch of iteration k − 1, the paper's "
                   "alternating optimisation of one network)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes of the label stages")
    p.add_argument("--num-gpus", type=int, default=1, help="processes of each training (detectron2's launch)")
    p.add_argument("--dry-run", action="store_true", help="print the stages' commands and stop")
    args = p.parse_args(argv)
    if args.iteration < 1:
        p.error("--iteration starts at 1")
    if args.iteration == 1 and not (args.cues and args.semantic_labels):
        p.error("iteration 1 needs --cues and --semantic-labels")
    for key in ("work", "cues", "semantic_labels", "proposals", "mil_config", "ss_config", "is_config"):
        if getattr(args, key):
            setattr(args, key, os.path.abspath(getattr(args, key)))
    return args


#: each stage's command: tools/<name>.py and the function that is its body
COMMANDS = {"make_ccgr_bags": "wsis.cli.make_ccgr_bags:main", "train_net": "wsis.cli.train_net:train_net",
            "infer_train_set": "wsis.cli.infer_train_set:main", "make_pseudo_masks": "wsis.cli.make_pseudo_masks:main"}


def run_command(cmd):
    """Run ``[name, *argv]`` (a key of :data:`COMMANDS`) in this process; the log handlers it adds (detectron2's
    ``setup_logger`` adds a console and a file handler per output folder) are closed when it returns, so the next
    stage does not print every line twice."""
    module, function = COMMANDS[cmd[0]].split(":")
    loggers = [logging.getLogger(name) for name in ("wsis", "detectron2", "d2", "fvcore")]
    before = {id(lg): list(lg.handlers) for lg in loggers}
    try:
        return getattr(importlib.import_module(module), function)(cmd[1:])
    finally:
        for lg in loggers:
            for h in [h for h in lg.handlers if h not in before[id(lg)]]:
                lg.removeHandler(h)
                h.close()


def shell(cmd):
    """The stage as a shell command (``python tools/<name>.py ...``)."""
    return shlex.join(["python", os.path.join("tools", f"{cmd[0]}.py"), *cmd[1:]])


class Iteration:
    """The stages of iteration k, each a command and the file that says it is done (None: a command that resumes
    by itself, run every time)."""

    def __init__(self, args, json_file, image_root):
        self.args, self.json_file, self.image_root = args, json_file, image_root
        self.work = args.work
        self.dir = os.path.join(self.work, f"iteration_{args.iteration}")
        self.prev = os.path.join(self.work, f"iteration_{args.iteration - 1}")
        #: iteration k − 1's instance predictions: the bags and segmentation labels of iteration k > 1
        self.previous = os.path.join(self.prev, "is_predictions.pth")
        self.proposals = args.proposals or os.path.join(self.work, "proposals.pkl")

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def stages(self):
        a, source = self.args, ["--json", self.json_file, "--images", self.image_root]
        bags, mil_boxes, store = self.path("bags.pkl"), self.path("mil_boxes.pth"), self.path("pseudo")
        if a.iteration == 1:
            keep = ["--proposals", self.proposals] if os.path.isfile(self.proposals) else ["--save-proposals",
                                                                                         self.proposals]
            bag_cmd = ["make_ccgr_bags"] + source + ["--cues", a.cues, "--foreground-labels", a.semantic_labels,
                                                     "--objectness", a.objectness, "--out", bags] + keep
            labels = a.semantic_labels
        else:
            bag_cmd = ["make_ccgr_bags"] + source + ["--predictions", self.previous, "--proposals", self.proposals,
                                                         "--score-thresh", str(a.bag_score_thresh), "--out", bags]
            labels = self.path("semantic")
        bag_cmd += ["--workers", str(a.workers)]
        bag_opt = ["WSIS.CCGR.BAGS", f"('{bags}',)"]
        train = ["DATASETS.TRAIN", f"('{a.dataset}',)"]
        mil = self.training(a.mil_config, "mil", bag_opt + train, a.mil_opts)
        ss = self.training(a.ss_config, "ss", ["WSIS.DATA.SEMANTIC_LABELS", f"('{labels}',)"] + train, a.ss_opts)
        is_ = self.training(a.is_config, "is", ["WSIS.DATA.PSEUDO_MASKS", f"('{store}/pseudo_masks.json',)"] + train,
                            a.is_opts)
        out = [("bags", bag_cmd, bags), mil,
               ("mil boxes", self.inference(a.mil_config, "mil", mil_boxes, bag_opt, a.mil_opts), mil_boxes)]
        if a.iteration > 1:
            out.append(("segmentation labels", ["semantic labels", f"the union of {self.previous}'s masks per "
                        f"class → {labels}"], os.path.join(labels, "done")))
        out += [ss, ("pseudo masks", ["make_pseudo_masks"] + source + [
            "--method", "ccgr", "--out", store, "--config-file", a.ss_config, "--workers", str(a.workers),
            *shlex.split(a.ss_opts), "MODEL.WEIGHTS", self.path("ss", "model_final.pth"),
            "WSIS.CCGR.BOXES", mil_boxes, *bag_opt], None), is_,
            ("instance predictions", self.inference(a.is_config, "is", self.path("is_predictions.pth"), [],
                                                    a.is_opts), self.path("is_predictions.pth"))]
        return out

    def training(self, config, name, opts, extra):
        opts = opts + shlex.split(extra)
        if self.args.iteration > 1 and not self.args.from_scratch:  # after the user's options: a MODEL.WEIGHTS
            # there (initial weights, e.g. tools/export_backbone.py's) is iteration 1's, not a restart of every one
            opts = opts + ["MODEL.WEIGHTS", os.path.join(self.prev, name, "model_final.pth")]
        cmd = ["train_net"] + ["--config-file", config, "--resume", "--num-gpus", str(self.args.num_gpus),
                               *opts, "OUTPUT_DIR", self.path(name)]
        return (f"{name} branch", cmd, self.path(name, "model_final.pth"))

    def inference(self, config, name, out, opts, extra):
        return ["infer_train_set"] + ["--config-file", config, "--dataset", self.args.dataset, "--out", out,
                                          *opts, *shlex.split(extra), "MODEL.WEIGHTS",
                                          self.path(name, "model_final.pth")]


def write_semantic_labels(args, it, labels):
    """Stage 3 of a later iteration, in this process: the union of the previous instance masks per class."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from wsis.core.io import atomic_write_json
    from wsis.data.predictions import read_predictions
    from wsis.methods.ccgr.label_job import write_instance_semantic_labels

    id_map = MetadataCatalog.get(args.dataset).thing_dataset_id_to_contiguous_id
    stats = write_instance_semantic_labels(DatasetCatalog.get(args.dataset), read_predictions(it.previous, id_map),
                                           it.previous, labels, args.label_score_thresh)
    atomic_write_json(stats, os.path.join(labels, "done"))


def check_store(path):
    """Stop with a clear error when the CCGR pseudo masks hold no instance (the instance branch has nothing to
    train on: detectron2 would fail on an empty dataset)."""
    from wsis.data.pseudo_store import load_pseudo_masks

    _, records = load_pseudo_masks(path)
    count = sum(1 for r in records.values() for i in r["instances"] if i.get("valid", True))
    logger.info(f"pseudo masks: {count} instances in {len(records)} images")
    if count == 0:
        sys.exit(f"error: {path} holds no instance: the segmentation branch's arg max has no pixel of the box's "
                 "class in any MIL box (an untrained segmentation branch predicts background everywhere); train it "
                 "longer (--ss-opts) and run this command again")


def main(argv=None):
    args = parse_args(argv)
    import wsis.modeling  # noqa: F401  (registers the builtin datasets)
    from detectron2.data import MetadataCatalog
    from detectron2.utils.logger import setup_logger

    setup_logger(name="wsis")
    meta = MetadataCatalog.get(args.dataset)
    if not hasattr(meta, "json_file"):
        sys.exit(f"error: {args.dataset} is not a registered COCO-style dataset (no json_file in its metadata)")
    it = Iteration(args, os.path.abspath(meta.json_file), os.path.abspath(meta.image_root))
    if args.iteration > 1:
        if not os.path.isfile(it.previous) and not args.dry_run:
            sys.exit(f"error: iteration {args.iteration} needs {it.previous}: run iteration {args.iteration - 1} "
                     "first")
        if not os.path.isfile(it.proposals) and not args.dry_run:
            sys.exit(f"error: {it.proposals} is missing: iteration 1 makes it, or pass --proposals")
    if not args.dry_run:
        os.makedirs(it.dir, exist_ok=True)
    for name, cmd, done in it.stages():
        text = cmd[1] if cmd[0] == "semantic labels" else shell(cmd)
        if args.dry_run:
            print(f"# {name}\n{text}")
            continue
        if done is not None and os.path.exists(done):  # (None: the command resumes by itself)
            logger.info(f"{name}: done ({done})")
            continue
        logger.info(f"{name}: {text}")
        start = time.perf_counter()
        if cmd[0] == "semantic labels":
            write_semantic_labels(args, it, it.path("semantic"))
        else:
            run_command(cmd)
        logger.info(f"{name}: {time.perf_counter() - start:.0f} s")
        if name == "pseudo masks":
            check_store(it.path("pseudo", "pseudo_masks.json"))
    if not args.dry_run:
        logger.info(f"iteration {args.iteration} done: {it.dir}")
    return it.dir
