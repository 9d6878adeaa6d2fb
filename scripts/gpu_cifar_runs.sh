#!/usr/bin/env bash
# Many CIFAR trainings at once on one GPU machine (the device tool's H100), detached, resumable.
# Prepare here:   bash ../shared/tools/pack_for_gpu.sh        (data + wheels into the git-ignored .carry/)
# There, in every call (carry: .carry, and runs/ if a previous call brought checkpoints back):
#   bash scripts/gpu_cifar_runs.sh start  "preact_resnet20 lm_resnet20" "0 1" [extra train flags]
#   bash scripts/gpu_cifar_runs.sh status                        (last metrics line of every run)
#   bash scripts/gpu_cifar_runs.sh collect                       (results -> $OUT/results.tar.gz,
#                                                                 checkpoints -> $OUT/checkpoints.tar)
# A run whose runs/<study>/<model>-s<seed>/checkpoint.pt exists is resumed, so a study cut off by the
# machine going back continues in the next call once its checkpoints are carried back.
set -euo pipefail
cd "$(dirname "$0")/.."
action=${1:?usage: gpu_cifar_runs.sh start MODELS SEEDS [flags] | status | collect}
study=${STUDY:-cifar10}
data=/tmp/data

setup() {
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .carry/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    [ -d "$data/cifar-10-batches-py" ] || python3 .carry/cifar10_from_jpeg.py "$data" --npz .carry/cifar10-jpeg75.npz
}

case "$action" in
start)
    setup
    models=${2:?models}; seeds=${3:?seeds}; shift 3
    for model in $models; do
        for seed in $seeds; do
            out="runs/$study/$model-s$seed"
            mkdir -p "$out"
            resume=(); [ -f "$out/checkpoint.pt" ] && resume=(--resume)
            setsid nohup python3 -m contdepth train --model "$model" --seed "$seed" --data-dir "$data" \
                --out "$out" --device cuda --no-progress "${resume[@]}" "$@" >"$out/log.txt" 2>&1 &
            echo "started $out ${resume[*]}"
        done
    done
    ;;
status)
    for run in runs/*/*/; do
        echo "$run: $(tail -n 1 "$run/metrics.jsonl" 2>/dev/null || tail -n 2 "$run/log.txt")"
    done
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv || true
    ;;
collect)
    : "${OUT:?collect writes into \$OUT}"
    find runs -name 'results.json' -o -name 'metrics.jsonl' -o -name '*.png' | tar -czf "$OUT/results.tar.gz" -T -
    find runs -name 'checkpoint.pt' | tar -cf "$OUT/checkpoints.tar" -T -
    ls -la "$OUT"
    ;;
*)
    echo "unknown action $action" >&2; exit 2 ;;
esac
