#!/usr/bin/env bash
# Quickstart: install wsis into .venv and make pseudo masks from the boxes of a COCO-style dataset, with quality
# figures and overlay pictures. Default: ../shared/data/coco_tiny val with the "wsps" generator (GrabCut and a segment
# proposal per box, settled by wsis's vote; projects/WSPS/README.md), using every CPU.
# Any argument is passed to tools/make_pseudo_masks.py (e.g. --coco-root DIR --split train --workers 2).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_env.sh
exec .venv/bin/python tools/make_pseudo_masks.py "$@"
