#!/usr/bin/env bash
# A study on an offline machine with a GPU that has only this checkout and a carry folder (.carry/: the
# CIFAR-10 archive, official or a .npz copy with its decoder; wheels the machine lacks; optionally COMMIT). See README,
# "On an offline GPU machine":
#   scripts/offline_gpu.sh start lu2018-cifar10 --budget 20 [--jobs auto] [reproduce flags] [-- train flags]
#   scripts/offline_gpu.sh watch 540
#   scripts/offline_gpu.sh collect "$OUT"
# The wheels go to $CONTDEPTH_SITE (default /tmp/contdepth-site), put on PYTHONPATH with this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
site=${CONTDEPTH_SITE:-/tmp/contdepth-site}
carry=.carry
for ((i = 1; i <= $#; i++)); do [ "${!i}" = --carry ] && { j=$((i + 1)); carry=${!j}; }; done
if [ "${1:-}" = start ] && compgen -G "$carry/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --upgrade --target "$site" "$carry"/*.whl
    echo "wheels: $(cd "$carry" && ls ./*.whl | xargs -n1 basename | tr '\n' ' ')-> $site"
fi
export PYTHONPATH="$site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 -m contdepth.offline "$@"
