#!/usr/bin/env bash
# Train every model, run every analysis of the assignment and write the report: figures go to
# figures/, the answers to report/report.pdf and report/report.md. The chain comes from runs.py.
#
#   ./run_me.sh            the assignment's chain with its hyper-parameters (course data if found,
#                          else the `starter` demo datasets, generated on first use)
#   QUICK=1 ./run_me.sh    the same chain on tiny demo data, one epoch per training (a few minutes)
#
# Environment: PYTHON (interpreter, default: python, else python3), SEED (default 0),
# FACES_DATA_ROOT (dataset root), DEMO_SCALE (demo size when no course data: starter|small|medium|full).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-$(command -v python || command -v python3)}
SEED=${SEED:-0}
QUICK=${QUICK:-0}
mkdir -p out checkpoints figures
TIMINGS=out/run_me_timings.tsv
printf 'step\tseconds\tpeak_rss_mib\n' > "$TIMINGS"

# step NAME COMMAND...: print a header, run, record wall time and peak RSS, stop on failure.
step() {
    local name=$1 started measure
    shift
    echo
    echo "=== [$name] $*"
    started=$(date +%s.%N)
    measure=$(mktemp)
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%M' -o "$measure" "$@" || { echo "*** run_me.sh: step '$name' failed" >&2; rm -f "$measure"; exit 1; }
    else
        "$@" || { echo "*** run_me.sh: step '$name' failed" >&2; rm -f "$measure"; exit 1; }
    fi
    local seconds rss
    seconds=$(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    rss=$(awk 'END { if ($1 ~ /^[0-9]+$/) printf "%.0f", $1 / 1024; else print "n/a" }' "$measure")
    rm -f "$measure"
    printf '%s\t%s\t%s\n' "$name" "$seconds" "$rss" >> "$TIMINGS"
    echo "=== [$name] done in ${seconds} s (peak RSS ${rss} MiB)"
}

# --- data: the course datasets if present, else generated demo datasets ----------------------
if [ "$QUICK" = 1 ]; then
    export FACES_DATA_ROOT=demo_datasets_quick
    echo "QUICK=1: tiny demo datasets in $FACES_DATA_ROOT, one epoch per training."
    step demo-data "$PYTHON" -m fmd.demo_data --out "$FACES_DATA_ROOT" --scale quick --seed "$SEED"
elif ! "$PYTHON" -m fmd.data.data_root; then  # data_root.py owns the search order (README, "Data")
    echo "No course data found: using demo datasets (a generated stand-in) in demo_datasets/."
    step demo-data "$PYTHON" -m fmd.demo_data --out demo_datasets --scale "${DEMO_SCALE:-starter}" --seed "$SEED"
fi

# --- the chain: runs.py prints one `dataset model optimizer epochs analyses...` line a run -----
if [ "$QUICK" = 1 ]; then CHAIN=$("$PYTHON" -m fmd.core.runs --quick); else CHAIN=$("$PYTHON" -m fmd.core.runs); fi \
    || { echo "*** run_me.sh: 'python -m fmd.core.runs' failed" >&2; exit 1; }
mapfile -t RUNS <<< "$CHAIN"

run_file() {  # run_file log|checkpoint DATASET MODEL OPTIMIZER: the path runs.py gives that file
    "$PYTHON" -c 'import sys; from fmd.core import runs; print(getattr(runs, sys.argv[1] + "_path")(*sys.argv[2:]))' "$@"
}

step samples "$PYTHON" plot_samples_of_faces_datasets.py --seed "$SEED"

# Each run is trained, then analysed, so a failure late in the chain keeps every earlier result.
for line in "${RUNS[@]}"; do
    read -r dataset model optimizer epochs analyses <<< "$line"
    checkpoint=$(run_file checkpoint "$dataset" "$model" "$optimizer")
    step "train-$dataset-$model" "$PYTHON" train_main.py -d "$dataset" -m "$model" --lr 0.001 --batch-size 32 \
        -e "$epochs" -o "$optimizer" --seed "$SEED"
    for analysis in $analyses; do
        case $analysis in
            plots) step "plots-$dataset-$model" "$PYTHON" plot_accuracy_and_loss.py -m "$model" \
                       -j "$(run_file log "$dataset" "$model" "$optimizer")" -d "$dataset" ;;
            numerical) step "numerical_analysis-$dataset-$model" "$PYTHON" numerical_analysis.py \
                           -m "$model" --checkpoint "$checkpoint" -d "$dataset" --seed "$SEED" ;;
            saliency) step "saliency_map-$dataset-$model" "$PYTHON" saliency_map.py \
                          -m "$model" --checkpoint "$checkpoint" -d "$dataset" --seed "$SEED" ;;
            grad_cam) step "grad_cam_analysis-$dataset-$model" "$PYTHON" grad_cam_analysis.py \
                          -m "$model" --checkpoint "$checkpoint" -d "$dataset" --seed "$SEED" ;;
            # The bonus: export the best-validation checkpoint to bonus_model.pt, then evaluate it.
            bonus) step bonus-main "$PYTHON" bonus_main.py --export "$checkpoint" --seed "$SEED" ;;
            *) echo "*** run_me.sh: unknown analysis '$analysis' in the chain of runs.py" >&2; exit 1 ;;
        esac
    done
done

# --- the report: every question answered from the files above --------------------------------
step report "$PYTHON" -m fmd.reporting

echo
echo "run_me.sh finished: logs in out/, checkpoints in checkpoints/, figures in figures/,"
echo "the report in report/report.pdf and report/report.md. Step timings: $TIMINGS."
