#!/usr/bin/env bash
# All set-up for the main job on built-in data, then `contdepth demo` on CPU, writing runs/demo/demo.png and demo.json.
# Extra arguments go to `contdepth demo` (e.g. --seed 1 --out runs/demo1).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python3 -c "import torch" 2>/dev/null; then
    python3 -m pip install --quiet torch==2.13.0   # the CPU build; bring your own CUDA build if you have a GPU
fi
python3 -m pip install --quiet -e .
python3 -m contdepth demo --out runs/demo "$@"
