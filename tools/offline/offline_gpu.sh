#!/usr/bin/env bash
# A study on a bare, offline GPU machine that keeps nothing: this checkout plus a carry folder (.carry/:
# the CIFAR-10 archive, official or a .npz copy with its decoder; wheels the machine lacks; optionally
# COMMIT). See tools/offline/README.md. Two commands; the defaults are sized for a 15-minute lease, and OUT is
# the folder whose files come back from the machine:
#   bash tools/offline/offline_gpu.sh start lu2018-cifar10 --budget 8 --only resnet20 [reproduce flags] [-- train flags]
#   bash tools/offline/offline_gpu.sh watch 300 --collect "$OUT"
# The wheels go to $CONTDEPTH_SITE (default /tmp/contdepth-site), put on PYTHONPATH with this checkout;
# then it runs `python3 -m tools.offline` from the checkout's root (relative paths are taken from there).
set -euo pipefail
cd "$(dirname "$0")/../.."
site=${CONTDEPTH_SITE:-/tmp/contdepth-site}
carry=.carry
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --carry ] && { j=$((i + 1)); carry=${!j}; }; done
if [ "${1:-}" = start ] && compgen -G "$carry/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --upgrade --target "$site" "$carry"/*.whl
    echo "wheels: $(cd "$carry" && ls ./*.whl | xargs -n1 basename | tr '\n' ' ')-> $site"
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m tools.offline "$@"
