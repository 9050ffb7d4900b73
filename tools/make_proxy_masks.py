#!/usr/bin/env python
"""
Deprecated: use ``tools/make_pseudo_masks.py --method boxcaseg --config-file CFG ... MODEL.WEIGHTS CKPT``.

Kept so that wsis 0.1 commands still run: ``--weights W`` becomes ``MODEL.WEIGHTS W``, ``--device D`` becomes
``MODEL.DEVICE D`` (both after the other overrides; the device defaults to the config's), the split defaults to train; the command is printed and run.
"""
import argparse
import re
import sys

CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")  # the old overrides, e.g. WSIS.BOXCASEG.DROP_THRESHOLD


def translate(argv):
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--weights", required=True)
    p.add_argument("--device")
    old, rest = p.parse_known_args(argv)
    first_opt = next((i for i, a in enumerate(rest) if CONFIG_KEY.match(a)), len(rest))
    flags, opts = rest[:first_opt], rest[first_opt:]
    if "--split" not in flags and "--json" not in flags:
        flags = ["--split", "train", *flags]
    device = ["MODEL.DEVICE", old.device] if old.device else []
    return ["--method", "boxcaseg", *flags, *opts, "MODEL.WEIGHTS", old.weights, *device]


def main(argv=None):
    argv = translate(sys.argv[1:] if argv is None else list(argv))
    print("make_proxy_masks.py is deprecated; running: tools/make_pseudo_masks.py " + " ".join(argv), file=sys.stderr)
    from wsis.cli import make_pseudo_masks as tool

    return tool.main(argv)


if __name__ == "__main__":
    main()
