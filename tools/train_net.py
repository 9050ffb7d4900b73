#!/usr/bin/env python
"""
Train or evaluate a wsis model with Detectron2 (the standard ``train_net.py`` template).

    python tools/train_net.py --config-file configs/quick_schedules/proxy_mask_rcnn_coco_tiny_instant_test.yaml \
        --num-gpus 1 WSIS.DATA.PSEUDO_MASKS "('output/pseudo/pseudo_masks.json',)"
    python tools/train_net.py --config-file ... --eval-only MODEL.WEIGHTS output/model_final.pth

The body is :mod:`wsis.cli.train_net` (``setup``, ``run``, ``train_net``).
"""
import wsis.modeling  # noqa: F401  (registers every wsis model part, loader and builtin dataset)
from wsis.engine import WSISTrainer
from wsis.cli.train_net import train_net


class Trainer(WSISTrainer):
    """Add project-specific behaviour here; everything wsis registers is available by name in configs."""


def invoke_main() -> None:
    train_net(trainer_cls=Trainer)


if __name__ == "__main__":
    invoke_main()
