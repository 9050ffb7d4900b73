#!/usr/bin/env python
"""
Train or evaluate a wsis model with Detectron2 (the standard ``train_net.py`` template).

    python tools/train_net.py --config-file configs/quick_schedules/proxy_mask_rcnn_coco_tiny_instant_test.yaml \
        --num-gpus 1 WSIS.DATA.PSEUDO_MASKS "('output/pseudo/pseudo_masks.json',)"
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/model_final.pth
"""
import detectron2.utils.comm as comm
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils.logger import setup_logger

import wsis.modeling  # noqa: F401  (registers every wsis model part, loader and builtin dataset)
from wsis.config import add_wsis_config
from wsis.engine import WSISTrainer


class Trainer(WSISTrainer):
    """Add project-specific behaviour here; everything wsis registers is available by name in configs."""


def setup(args):
    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(output=cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="wsis")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        res = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res

    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def invoke_main() -> None:
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
