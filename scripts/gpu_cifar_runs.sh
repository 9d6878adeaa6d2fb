#!/usr/bin/env bash
# A study of `contdepth reproduce` on one GPU machine, detached, in waves that fit the machine's time.
# Prepare here:   bash ../shared/tools/pack_for_gpu.sh        (data + wheels into the git-ignored .carry/)
# There, in every call (carry: .carry, and runs/ if a previous call brought checkpoints back):
#   JOBS=4 BUDGET=25 bash scripts/gpu_cifar_runs.sh start "resnet20,lm_resnet20" "0,1" [extra train flags]
#   bash scripts/gpu_cifar_runs.sh status                        (the study's progress lines)
#   bash scripts/gpu_cifar_runs.sh collect                       (results -> $OUT/results.tar.gz,
#                                                                 checkpoints -> $OUT/checkpoints.tar)
# An empty run list means the whole study. Finished runs are skipped and interrupted ones resume, so a
# study cut off by the machine going back continues in the next call once its runs/ is carried back.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: gpu_cifar_runs.sh start RUNS SEEDS [flags] | status | collect}
study=${STUDY:-lu2018-cifar10}
data=/tmp/data

setup() {
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .carry/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    [ -d "$data/cifar-10-batches-py" ] || python3 .carry/cifar10_from_jpeg.py "$data" --npz .carry/cifar10-jpeg75.npz
}

case "$action" in
start)
    setup
    runs=${2?runs (comma-separated, empty for all)}; seeds=${3:?seeds}; shift 3
    mkdir -p "runs/$study"
    only=(); [ -n "$runs" ] && only=(--only "$runs")
    budget=(); [ -n "${BUDGET:-}" ] && budget=(--budget "$BUDGET")
    setsid nohup python3 -m contdepth reproduce "$study" --out "runs/$study" --seeds "$seeds" "${only[@]}" \
        --jobs "${JOBS:-1}" "${budget[@]}" -- --device cuda --data-dir "$data" "$@" >>"runs/$study.log" 2>&1 &
    echo "started $study (log in runs/$study.log)"
    ;;
status)
    tail -n 5 runs/*.log 2>/dev/null || echo "no study started"
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv || true
    ;;
collect)
    : "${OUT:?collect writes into \$OUT}"
    find runs \( -name 'results.json' -o -name 'metrics.jsonl' -o -name 'config.json' -o -name '*.png' \
        -o -name 'train.log' -o -name 'launches.jsonl' -o -name '*.log' \) | tar -czf "$OUT/results.tar.gz" -T -
    find runs -name 'checkpoint.pt' | tar -cf "$OUT/checkpoints.tar" -T -
    ls -la "$OUT"
    ;;
*)
    echo "unknown action $action" >&2; exit 2 ;;
esac
