"""
What a wsis checkpoint was trained on: the wsis version, the model, the datasets, every pseudo-label input with its
provenance (method, parameters, source and its hash), and the initial weights (``wsis.checkpoint.description``).

    python tools/describe_checkpoint.py output/bbtp_coco_tiny_instant_test/model_final.pth
    python tools/describe_checkpoint.py wsis://BBTP/bbtp_coco_tiny_instant_test/model_final.pth --config
    python tools/describe_checkpoint.py model_final.pth --json > description.json

Exit status: 0 with a description, 1 for a checkpoint that has none (an older wsis, or another program), 2 for a
path that cannot be read.
"""
import argparse
import json
import sys

from fvcore.common.file_io import PathManager

from wsis.checkpoint import format_description, read_description

__all__ = ["main", "parse_args"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a .pth file, a wsis:// path (WSIS_MODEL_ZOO) or a URL")
    p.add_argument("--config", action="store_true", help="print the training config too")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        local = PathManager.get_local_path(args.checkpoint)  # a missing file, an unknown wsis:// name: one line
        try:
            desc = read_description(local)
        except Exception as e:  # torch.load of a file that is no checkpoint raises from deep inside its unpickler
            raise ValueError(f"not a readable torch checkpoint ({type(e).__name__}: {e})") from None
    except (OSError, ValueError) as e:
        print(f"describe_checkpoint: {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    if desc is None:
        print(f"{args.checkpoint}: no wsis description (written before wsis checkpoints described "
              "themselves, or by another program)")
        return 1
    print(json.dumps(desc, indent=1, sort_keys=True) if args.json else format_description(desc, args.config))
    return 0
