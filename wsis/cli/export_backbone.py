"""
Export a trained network's backbone as Detectron2 model-zoo initial weights (``MODEL.WEIGHTS``) for another
architecture: ``wsis.checkpoint.backbone``. Here it gives CCGR's segmentation branch (ResNet-18 FPN) the CAM
classifier's stem, res2 and res3, where the paper starts from ImageNet weights (projects/CCGR/README.md).

    python tools/export_backbone.py output/cam_R18_scratch_copy_paste/model_final.pth \\
        output/cam_R18_scratch_copy_paste/backbone.pkl
    python tools/train_net.py --config-file projects/CCGR/configs/semantic_psp_R18_cam_copy_paste.yaml \\
        MODEL.WEIGHTS output/cam_R18_scratch_copy_paste/backbone.pkl ...

Detectron2 matches each exported name to the model parameter it is a suffix of and logs what it matched and what
it did not find; the two models' layers must agree in shape and normalisation (a BatchNorm backbone into a
BatchNorm model).
"""
import argparse
import sys

from fvcore.common.file_io import PathManager

from wsis.checkpoint.backbone import BackboneExportError, export_backbone

__all__ = ["main", "parse_args"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a detectron2 / wsis checkpoint (.pth): a path, a wsis:// name "
                   "(WSIS_MODEL_ZOO) or a URL")
    p.add_argument("out", help="the backbone's weights (.pkl)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        count = export_backbone(PathManager.get_local_path(args.checkpoint), args.out)
    except (BackboneExportError, OSError, ValueError) as e:  # ValueError: an unknown wsis:// name
        print(f"export_backbone: {e}", file=sys.stderr)
        return 2
    print(f"{args.out}: {count} backbone arrays of {args.checkpoint}")
    return 0
