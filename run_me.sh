#!/usr/bin/env bash
# Train every model and run every analysis of the assignment; figures go to figures/.
#
#   ./run_me.sh            the assignment's chain with its hyper-parameters (course data if found,
#                          else the `small` demo datasets, generated on first use)
#   QUICK=1 ./run_me.sh    the same chain on tiny demo data, one epoch per training (a few minutes)
#
# Environment: PYTHON (interpreter, default: python, else python3), SEED (default 0),
# FACES_DATA_ROOT (dataset root), DEMO_SCALE (demo size when no course data: small|medium|full).
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
    step demo-data "$PYTHON" make_demo_datasets.py --out "$FACES_DATA_ROOT" --scale quick --seed "$SEED"
    EPOCHS=1; EPOCHS_XCEPTION=1
elif [ -z "${FACES_DATA_ROOT:-}" ] && [ ! -d Assignment4_datasets ] && [ ! -d ../Assignment4_datasets ]; then
    echo "No course data found: using demo datasets (a generated stand-in) in demo_datasets/."
    step demo-data "$PYTHON" make_demo_datasets.py --out demo_datasets --scale "${DEMO_SCALE:-small}" --seed "$SEED"
    EPOCHS=5; EPOCHS_XCEPTION=2
else
    EPOCHS=5; EPOCHS_XCEPTION=2
fi

train() {  # train DATASET MODEL EPOCHS
    step "train-$1-$2" "$PYTHON" train_main.py -d "$1" -m "$2" --lr 0.001 -b 32 -e "$3" -o Adam --seed "$SEED"
}
analyse() {  # analyse SCRIPT DATASET MODEL
    step "${1%.py}-$2-$3" "$PYTHON" "$1" -m "$3" -cpp "checkpoints/$2_$3_Adam.pt" -d "$2" --seed "$SEED"
}

step samples "$PYTHON" plot_samples_of_faces_datasets.py --seed "$SEED"

train fakes_dataset SimpleNet "$EPOCHS"
train synthetic_dataset SimpleNet "$EPOCHS"
train synthetic_dataset XceptionBased "$EPOCHS_XCEPTION"

for run in fakes_dataset:SimpleNet synthetic_dataset:SimpleNet synthetic_dataset:XceptionBased; do
    dataset=${run%%:*} model=${run##*:}
    step "plots-$dataset-$model" "$PYTHON" plot_accuracy_and_loss.py -m "$model" -j "out/${dataset}_${model}_Adam.json" -d "$dataset"
done
for run in fakes_dataset:SimpleNet synthetic_dataset:SimpleNet synthetic_dataset:XceptionBased; do
    analyse numerical_analysis.py "${run%%:*}" "${run##*:}"
done
analyse saliency_map.py fakes_dataset SimpleNet
analyse saliency_map.py synthetic_dataset XceptionBased
for run in fakes_dataset:SimpleNet synthetic_dataset:SimpleNet synthetic_dataset:XceptionBased; do
    analyse grad_cam_analysis.py "${run%%:*}" "${run##*:}"
done

# --- bonus: train on fakes, export the best-validation checkpoint, evaluate ---------------------
train fakes_dataset BonusNet "$EPOCHS"
analyse numerical_analysis.py fakes_dataset BonusNet
step bonus-main "$PYTHON" bonus_main.py --export checkpoints/fakes_dataset_BonusNet_Adam.pt --seed "$SEED"

echo
echo "run_me.sh finished: logs in out/, checkpoints in checkpoints/, figures in figures/."
echo "Step timings: $TIMINGS. Write the report with: python report.py"
