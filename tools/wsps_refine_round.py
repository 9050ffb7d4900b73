#!/usr/bin/env python
"""
Deprecated: use ``tools/make_pseudo_masks.py --method wsps_round ... WSIS.PSEUDO.WSPS_ROUND.PREDICTIONS FILE``.

Kept so that wsis 0.1 commands still run: the old options are translated into that command (printed) and run.
    --predictions P / --semantic-dir D   WSIS.PSEUDO.WSPS_ROUND.PREDICTIONS P / .SEMANTIC_DIR D
    --category-ids, --outside            WSIS.PSEUDO.WSPS_ROUND.CATEGORY_IDS, .OUTSIDE
    --crf-param KEY=VALUE, --no-crf      WSIS.PSEUDO.WSPS_ROUND.CRF.<KEY> VALUE, .CRF_ENABLED False
Every other option is the same.
"""
import argparse
import sys



def translate(argv):
    p = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    p.add_argument("--predictions")
    p.add_argument("--semantic-dir")
    p.add_argument("--category-ids")
    p.add_argument("--outside")
    p.add_argument("--crf-param", action="append", default=[])
    p.add_argument("--no-crf", action="store_true")
    old, rest = p.parse_known_args(argv)
    opts = []
    for flag, key in (("predictions", "PREDICTIONS"), ("semantic_dir", "SEMANTIC_DIR"),
                      ("category_ids", "CATEGORY_IDS"), ("outside", "OUTSIDE")):
        if getattr(old, flag) is not None:
            opts += [f"WSIS.PSEUDO.WSPS_ROUND.{key}", getattr(old, flag)]
    for kv in old.crf_param:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            sys.exit(f"error: --crf-param {kv!r}: expected KEY=VALUE")
        opts += [f"WSIS.PSEUDO.WSPS_ROUND.CRF.{key.upper()}", value]
    if old.no_crf:
        opts += ["WSIS.PSEUDO.WSPS_ROUND.CRF_ENABLED", "False"]
    return ["--method", "wsps_round", *rest, *opts]


def main(argv=None):
    argv = translate(sys.argv[1:] if argv is None else list(argv))
    print("wsps_refine_round.py is deprecated; running: tools/make_pseudo_masks.py " + " ".join(argv), file=sys.stderr)
    from wsis.cli import make_pseudo_masks as tool

    if "--split" not in argv and "--json" not in argv:
        argv = ["--split", "train", *argv]  # this tool's default split
    return tool.main(argv)


if __name__ == "__main__":
    main()
