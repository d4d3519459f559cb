#!/usr/bin/env bash
# One short check of groktune's GPU path: at most ~6 minutes on one GPU, one table.
#
#   OUT=/tmp/gpu_check bash benchmarks/gpu_check.sh                 # on a GPU machine, repo root as cwd
#   GPU_CHECK_DEVICE=cpu OUT=/tmp/gc bash benchmarks/gpu_check.sh    # dry run of every section on a CPU
#
# Needs PyTorch and the repository on PYTHONPATH (set here), never Ray or Optuna. Every section
# runs under its own `timeout` within an overall deadline; a section that fails becomes a table
# row "FAILED: <reason>" and the script goes on. Full output goes to $OUT/gpu_check.log, the
# table to stdout and $OUT/table.md. Without a GPU (and without GPU_CHECK_DEVICE=cpu) it prints
# one line saying so and exits 1.
#
# Sections: groktune train on the device (fp32, tf32, bf16, fp16, compile) for two configs (time
# to 95 % val, steps/s); host syncs per non-eval step and peak GPU memory for the same settings;
# member-steps/s of K members in one process (vectorised) against separate processes sharing the
# GPU; cross-device resume (CPU -> GPU -> CPU); the tests marked gpu.

set -u
PYTHON=${PYTHON:-python3}
GROKTUNE="$PYTHON -m orchestrator.cli.main"   # the `groktune` command, without an install
DEVICE=${GPU_CHECK_DEVICE:-cuda}
OUT=${OUT:-gpu_check_out}
SECONDS_TOTAL=${GPU_CHECK_SECONDS:-340}  # overall deadline; sections start only while time is left
CONFIGS=${GPU_CHECK_CONFIGS:-"configs/modmul_grokfast.yaml configs/modmul97_fastest.yaml"}
MODES=${GPU_CHECK_MODES:-fp32,tf32,bf16,fp16,compile}
GPU_TESTS="tests/trials/test_cuda.py"
if [ "$DEVICE" = cpu ]; then  # dry run: every code path but the CUDA-only modes, tiny step counts
  MODES=${GPU_CHECK_MODES:-fp32,bf16,compile}; SCALE=3
  TRAIN_CAP="--set train.steps=20"; KS=${GPU_CHECK_KS:-1,2}; POP_STEPS=2; SEP_MAX=2; SYNC_STEPS=3; RESUME_STEPS=5; THROUGHPUT_STEPS=3
else
  SCALE=1  # budgets below are seconds on the GPU machine; the dry run on a CPU gets SCALE times more
  TRAIN_CAP=""; KS=${GPU_CHECK_KS:-1,16,64,256}; POP_STEPS=30; SEP_MAX=16; SYNC_STEPS=10; RESUME_STEPS=20; THROUGHPUT_STEPS=200
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
TABLE="$OUT/table.md"
: >"$LOG"
WORK=$(mktemp -d)   # run folders stay here, not in $OUT (only a few files come back from $OUT)
trap 'rm -rf "$WORK"' EXIT
START=$(date +%s)

if ! $PYTHON benchmarks/gpu_check.py detect --device "$DEVICE" >"$WORK/detect" 2>>"$LOG"; then
  line=$(tail -n 1 "$LOG")
  echo "${line:-gpu_check: no CUDA GPU visible; nothing measured}"
  echo "${line:-gpu_check: no CUDA GPU visible; nothing measured}" >"$TABLE"
  exit 1
fi

{ echo "| section | case | result |"; echo "|---|---|---|"; cat "$WORK/detect"; } >"$TABLE"
FAILURES=0

left() { echo $(( START + SECONDS_TOTAL - $(date +%s) )); }

# section NAME CASE BUDGET_S CMD...: run CMD under `timeout` (its budget, or what is left), log
# its full output, and add its rows (stdout lines starting with "|") or one FAILED/SKIPPED row.
section() {
  local name=$1 case=$2 budget=$(( $3 * SCALE )); shift 3
  local remaining; remaining=$(left)
  if [ "$remaining" -lt 15 ]; then
    echo "| $name | $case | SKIPPED: out of time (overall deadline ${SECONDS_TOTAL} s) |" >>"$TABLE"
    return
  fi
  [ "$budget" -gt "$remaining" ] && budget=$remaining
  echo "=== $name: $case (budget ${budget} s) :: $*" >>"$LOG"
  local t0; t0=$(date +%s)
  timeout -k 5 "$budget" bash -c '"$@"' _ "$@" >"$WORK/out" 2>"$WORK/err"
  local rc=$?
  cat "$WORK/out" "$WORK/err" >>"$LOG"
  echo "=== $name: exit $rc after $(( $(date +%s) - t0 )) s" >>"$LOG"
  grep '^|' "$WORK/out" >>"$TABLE"
  if [ $rc -ne 0 ]; then
    FAILURES=$((FAILURES + 1))
    local why
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then why="timed out after ${budget} s"
    else why=$(grep -v '^\s*$' "$WORK/err" | tail -n 1 | cut -c1-200 | tr '|' '/'); fi
    grep -q '^|' "$WORK/out" && why="$why (the rows above are what finished)"
    echo "| $name | $case | FAILED: exit $rc: ${why:-no output} |" >>"$TABLE"
  fi
}

# groktune train: one run per config and mode through the CLI; a row from its result.json.
train_row() {  # CONFIG MODE OUTDIR WALL
  $PYTHON - "$@" <<'EOF'
import json, sys
config, mode, out, wall = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
r = json.load(open(f"{out}/result.json"))
rate = r["final_step"] / r["wall_time"] if r["wall_time"] else float("nan")
at = r["steps_to_target"]
if at is not None:
    try:  # the wall time of the eval at that step (the run went on for the patience evals)
        rows = [json.loads(line) for line in open(f"{out}/metrics.jsonl") if line.strip()]
        wall_at = next(x["wall_time"] for x in rows if x.get("step") == at)
        to = f"95 % val at step {at}, {wall_at:.1f} s"
    except (OSError, StopIteration, ValueError, KeyError):
        to = f"95 % val at step {at}"
else:
    to = f"target not reached ({r['status']}, val_acc {r['final'].get('val_acc', float('nan')):.3f})"
print(f"| train | {config} {mode} | {to}; {r['final_step']} steps in {r['wall_time']:.1f} s "
      f"= {rate:.0f} steps/s (evals included); process {wall:.0f} s |")
EOF
}
run_train() {  # CONFIG MODE
  local cfg=$1 mode=$2 name; name=$(basename "$cfg" .yaml)
  local sets="--set train.device=$DEVICE"
  case $mode in
    fp32) sets="$sets --set train.precision=fp32" ;;
    tf32) sets="$sets --set train.precision=fp32 --set train.tf32=true" ;;
    bf16) sets="$sets --set train.precision=bf16" ;;
    fp16) sets="$sets --set train.precision=fp16" ;;
    compile) sets="$sets --set train.precision=fp32 --set train.compile=true" ;;
  esac
  local out="$WORK/run-$name-$mode" t0; t0=$(date +%s)
  # shellcheck disable=SC2086
  $GROKTUNE train "$cfg" $sets $TRAIN_CAP --out "$out" || return $?
  train_row "$name" "$mode" "$out" $(( $(date +%s) - t0 ))
}

pytest_rows() {
  local par=""
  $PYTHON -c "import xdist" 2>/dev/null && par="-n 4"
  # shellcheck disable=SC2086
  $PYTHON -m pytest -m gpu -q -p no:cacheprovider $par $GPU_TESTS >"$WORK/pytest" 2>&1
  local rc=$?
  cat "$WORK/pytest" >&2
  echo "| pytest | -m gpu $GPU_TESTS | exit $rc: $(grep -E '(passed|failed|skipped|error|no tests ran)' "$WORK/pytest" | tail -n 1) |"
  grep -E '^(FAILED|ERROR) ' "$WORK/pytest" | cut -c1-200 | sed 's/^/| pytest | failure | /; s/$/ |/'
  return $rc
}

throughput_rows() {  # benchmarks/train_throughput.py on the device, its table folded into rows
  $PYTHON benchmarks/train_throughput.py --device "$DEVICE" --steps "$1" --repeats 1 --precisions fp32,bf16 \
    --threads 1 >"$WORK/throughput" || return $?
  cat "$WORK/throughput" >&2
  awk -F'|' '/^\| (baseline|groktune)/ { printf "| throughput | %s| %s steps/s, %s the plain-PyTorch baseline on the same device; model FLOPs %s of the peak, executed %s |\n", $2, $3, $5, $6, $8 }' \
    "$WORK/throughput" | sed 's/  */ /g'
  grep -E '^measured' "$WORK/throughput" | sed 's/^/| throughput | peaks | /; s/$/ |/'
}

export PYTHON GROKTUNE DEVICE TRAIN_CAP WORK GPU_TESTS
export -f train_row run_train pytest_rows throughput_rows

train_section() {  # the CLI runs of one mode, both configs
  local mode=$1 budget=40
  [ "$mode" = compile ] && budget=60
  for cfg in $CONFIGS; do
    section train "$(basename "$cfg" .yaml) $mode" $budget run_train "$cfg" "$mode"
  done
}

# Order: what matters most first, so a slow machine loses only the tail (the table says what was skipped).
for mode in ${MODES//,/ }; do
  case $mode in tf32|compile) ;; *) train_section "$mode" ;; esac  # tf32 is counted in the syncs section
done

section population "modmul_grokfast K=$KS" 110 \
  $PYTHON benchmarks/gpu_check.py population configs/modmul_grokfast.yaml --device "$DEVICE" --ks "$KS" \
  --steps $POP_STEPS --separate-max $SEP_MAX --seconds $(( 80 * SCALE ))

for cfg in $CONFIGS; do
  section syncs "$(basename "$cfg" .yaml)" 75 \
    $PYTHON benchmarks/gpu_check.py syncs "$cfg" --device "$DEVICE" --modes "$MODES" --steps $SYNC_STEPS
done

section resume "modmul_grokfast cpu -> $DEVICE -> cpu" 60 \
  $PYTHON benchmarks/gpu_check.py resume configs/modmul_grokfast.yaml --device "$DEVICE" --steps $RESUME_STEPS

section pytest "-m gpu" 90 pytest_rows

case ",$MODES," in *,compile,*) train_section compile ;; esac  # last: compiling is slow, the syncs section warmed its caches

section throughput "train_throughput.py --device $DEVICE" 45 throughput_rows "$THROUGHPUT_STEPS"

echo "" >>"$TABLE"
echo "Total $(( $(date +%s) - START )) s; $FAILURES section(s) failed; mode $DEVICE; command: OUT=... bash benchmarks/gpu_check.sh" >>"$TABLE"
cat "$TABLE"
[ $FAILURES -eq 0 ]
