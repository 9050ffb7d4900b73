"""
The body of ``tools/train_net.py`` (detectron2's template) as functions, so that a wsis command can run a training
in its own process (``tools/ccgr_iteration.py``: the datasets a user registered stay visible) with the same
behaviour as the script: :func:`setup` builds the config, :func:`run` trains (or evaluates, ``--eval-only``), and
:func:`train_net` parses the script's arguments and runs under detectron2's ``launch``.
"""
import detectron2.utils.comm as comm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils.logger import setup_logger

from wsis.config import add_wsis_config

from wsis.engine import WSISTrainer

__all__ = ["setup", "run", "train_net"]


def setup(args):
    """The frozen config of ``args`` (``config_file``, ``opts``) with wsis's keys, set up as detectron2 does."""
    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="wsis")
    return cfg


def run(args, trainer_cls=WSISTrainer):
    """Train with ``trainer_cls`` (resuming with ``args.resume``), or evaluate ``MODEL.WEIGHTS`` (``eval_only``)."""
    cfg = setup(args)
    if args.eval_only:
        model = trainer_cls.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        res = trainer_cls.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res
    trainer = trainer_cls(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def train_net(argv=None, trainer_cls=WSISTrainer):
    """``tools/train_net.py``'s command line (``argv``; None: ``sys.argv``), one process per GPU under ``launch``."""
    args = default_argument_parser().parse_args(argv)
    print("Command Line Args:", args)
    return launch(run, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                  dist_url=args.dist_url, args=(args, trainer_cls))
