"""
The job every pseudo-label command runs (``tools/make_pseudo_masks.py``, ``tools/make_cues.py``): its source
dataset, its shard, the resumable run of a generator into a store (pseudo masks or cues), and the outputs next to
it (:mod:`.outputs`); in one process, with workers, or one shard per process under detectron2's ``launch``.
"""
import logging
import os
import sys

from wsis.data.coco_weak import load_coco_instances
from wsis.data.pseudo_store import make_provenance, source_hash_of_file
from wsis.data.weak import to_box_supervision

from .outputs import write_job_outputs
from .shards import merge_shards, shard_dicts, shard_provenance

logger = logging.getLogger(__name__)


def add_source_arguments(parser, default_root, default_split):
    """The source-dataset options of a pseudo-mask command: ``--coco-root``/``--split`` or ``--json``/``--images``."""
    src = parser.add_argument_group("source dataset (COCO style)")
    src.add_argument("--coco-root", default=os.environ.get("WSIS_COCO_ROOT", default_root),
                     help="folder with annotations/instances_<split>2017.json and <split>2017/ (default: %(default)s)")
    src.add_argument("--split", default=default_split, help="split under --coco-root (default: %(default)s)")
    src.add_argument("--json", help="COCO instances json (overrides --coco-root/--split)")
    src.add_argument("--images", help="image folder of --json")


def add_job_arguments(parser):
    """The options every pseudo-mask command shares: workers, shards, overlays, semantic maps, overwrite, progress."""
    parser.add_argument("--save-semantic", action="store_true", help="also write semantic/<image_id>.png label maps")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes (default: the number of CPUs, %(default)s; the output does not depend on it)")
    parser.add_argument("--num-shards", type=int, default=1,
                        help="split the images into this many shards (by sorted image id), one store each; merge "
                             "them with --merge (default: %(default)s)")
    parser.add_argument("--shard-index", type=int, default=0, help="the shard this run makes (0-based)")
    parser.add_argument("--num-vis", type=int, default=8, help="overlay pictures to write (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="start again instead of resuming / refusing")
    parser.add_argument("--no-progress", action="store_true")


def add_launch_arguments(parser):
    """The options of one process per device under detectron2's ``launch`` (generators that run a network)."""
    d = parser.add_argument_group("one process per device (detectron2's launch; generators that run a network)")
    d.add_argument("--num-gpus", type=int, default=1, help="processes per machine (default: %(default)s)")
    d.add_argument("--num-machines", type=int, default=1)
    d.add_argument("--machine-rank", type=int, default=0)
    d.add_argument("--dist-url", default="auto", help="torch.distributed init URL (default: a free local port)")


def add_shard_arguments(parser, verb="make"):
    """``--num-shards K --shard-index i`` of a command whose shards write into one shared ``--out`` folder."""
    parser.add_argument("--num-shards", type=int, default=1,
                        help="split the images into K shards (default: %(default)s)")
    parser.add_argument("--shard-index", type=int, default=0,
                        help=f"{verb} only shard i, into the shared --out folder")


def launch_job(run, args):
    """``run(args)`` in this process, or in one process per device under detectron2's ``launch`` when
    ``args.num_gpus * args.num_machines > 1`` (:func:`add_launch_arguments`; not together with ``--num-shards``)."""
    if args.num_gpus * args.num_machines <= 1:
        return run(args)
    if getattr(args, "num_shards", 1) > 1:
        sys.exit("error: --num-shards and --num-gpus split the images each; use one of them")
    from detectron2.engine import launch

    return launch(run, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                  dist_url=args.dist_url, args=(args,))


def setup_logging():
    """The console log of a pseudo-mask command."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")


def start_job(args):
    """Log to the console and load the source dataset (:func:`load_source`) of a pseudo-mask command."""
    setup_logging()
    return load_source(args)


def load_source(args):
    """
    Returns:
        (json_file, gt_dicts with masks where the json has them, box_dicts: the same with boxes and classes only
        (what a generator sees), metadata of :func:`wsis.data.coco_weak.load_coco_instances`)
    """
    json_file = args.json or os.path.join(args.coco_root, "annotations", f"instances_{args.split}2017.json")
    image_root = args.images or os.path.join(args.coco_root, f"{args.split}2017")
    if not os.path.isfile(json_file):
        sys.exit(f"error: {json_file} does not exist; pass --coco-root or --json/--images")
    gt_dicts, meta = load_coco_instances(json_file, image_root, supervision="mask", on_bad="warn")
    return json_file, gt_dicts, to_box_supervision(gt_dicts), meta


def job_provenance(method, generator, json_file):
    """The provenance of a job's store: method, parameters, the source json and its sha256, and the generator's
    ``provenance_extra`` (e.g. the predictions a round starts from)."""
    return make_provenance(method, generator.params, source=os.path.abspath(json_file),
                           source_hash=source_hash_of_file(json_file), **getattr(generator, "provenance_extra", {}))


def _store_path(out, store_name):
    return os.path.join(out, store_name) if store_name else out


def run_job(args, method, generator, json_file, gt_dicts, box_dicts, meta, store=None,
            store_name="pseudo_masks.json", outputs=None):
    """
    The whole job of a pseudo-label command: run ``generator`` over shard ``args.shard_index`` of ``args.num_shards``
    of ``box_dicts`` (all of them by default) into the store ``<args.out>/<store_name>`` (provenance:
    :func:`job_provenance`, plus the shard; workers, progress, resume, overwrite from :func:`add_job_arguments`),
    then ``outputs`` on that shard's images.

    Args:
        store: the kind of store (:func:`wsis.pseudo.runner.store_kind`; default pseudo masks). store_name: the
            store's name in ``args.out`` ("": ``args.out`` itself, e.g. a cue-store folder).
        outputs: ``outputs(args, store_path, skipped, dicts, gt_dicts, meta, provenance, generator) -> dict``
            (default: :func:`wsis.pseudo.outputs.write_job_outputs` of the pseudo masks).

    Returns:
        dict: what ``outputs`` returns (the contents of ``metrics.json``).
    """
    from .runner import run_generator

    num_shards, shard_index = getattr(args, "num_shards", 1), getattr(args, "shard_index", 0)
    box_dicts = shard_dicts(box_dicts, num_shards, shard_index)
    provenance = shard_provenance(job_provenance(method, generator, json_file), num_shards, shard_index)
    os.makedirs(args.out, exist_ok=True)
    out_file = _store_path(args.out, store_name)
    skipped = run_generator(box_dicts, generator, out_file, provenance, workers=args.workers,
                            progress=not args.no_progress, overwrite=args.overwrite, store=store)
    return (outputs or _outputs)(args, out_file, skipped, box_dicts, gt_dicts, meta, provenance, generator)


def job_info(provenance):
    """What ``metrics.json`` repeats of a store's provenance (method, parameters, source, shard, extras)."""
    return {k: v for k, v in provenance.items() if k not in ("wsis_version", "source_hash")}


def _outputs(args, out_file, skipped, box_dicts, gt_dicts, meta, provenance, generator):
    ids = {d["image_id"] for d in box_dicts}
    return write_job_outputs(args.out, out_file, skipped, box_dicts, [d for d in gt_dicts if d["image_id"] in ids],
                             meta["thing_classes"], args.num_vis, args.save_semantic, job_info(provenance),
                             getattr(generator, "quality_hint", None))


def run_distributed_job(args, method, generator, json_file, gt_dicts, box_dicts, meta, store=None,
                        store_name="pseudo_masks.json", outputs=None):
    """
    :func:`run_job` in each process of detectron2's ``launch``: rank r of W makes shard r of W into
    ``<args.out>/shards/rank<r>/<store_name>``; after a barrier the main process merges them into
    ``<args.out>/<store_name>`` (:func:`wsis.pseudo.shards.merge_shards`, the same bytes as one process) and writes
    the job's outputs. Every rank resumes its own shard after a kill.

    Returns:
        dict: what ``outputs`` returns on the main process, None on the others.
    """
    from detectron2.utils import comm

    from .runner import run_generator

    rank, world = comm.get_rank(), comm.get_world_size()
    provenance = job_provenance(method, generator, json_file)
    mine = shard_dicts(box_dicts, world, rank)
    shard_file = _store_path(os.path.join(args.out, "shards", f"rank{rank}"), store_name)
    os.makedirs(os.path.join(args.out, "shards", f"rank{rank}"), exist_ok=True)
    skipped = run_generator(mine, generator, shard_file, shard_provenance(provenance, world, rank),
                            workers=args.workers, progress=not args.no_progress and comm.is_main_process(),
                            overwrite=args.overwrite, store=store)
    skipped = sorted(s for part in comm.all_gather(skipped) for s in part)
    metrics = None
    if comm.is_main_process():
        out_file = _store_path(args.out, store_name)
        shard_files = [_store_path(os.path.join(args.out, "shards", f"rank{r}"), store_name) for r in range(world)]
        merge_shards(shard_files, out_file, overwrite=True, store=store)
        metrics = (outputs or _outputs)(args, out_file, skipped, box_dicts, gt_dicts, meta, provenance, generator)
    comm.synchronize()
    return metrics
