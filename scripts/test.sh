#!/usr/bin/env bash
# Install wsis into .venv and run the test suite. Tests that need detectron2 are skipped when it is not installed;
# the last lines say how many.  Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup_env.sh
exec .venv/bin/python -m pytest tests -q -p no:cacheprovider "$@"
