#!/usr/bin/env bash
# Side-by-side GPU benchmark of oasis_tf and the official PyTorch OASIS code.
#
#   tools/gpu_bench.sh [--official_root DIR] [--output FILE] [--budget SECONDS]
#   OFFICIAL_ROOT=/path/to/OASIS tools/gpu_bench.sh
#   tools/gpu_bench.sh --list          # the cases, nothing run
#   tools/gpu_bench.sh --cpu_dry_run   # every case on the CPU at a tiny size
#
# Cases, at the paper's GPU training configurations (tools/bench.py ade20k_gpu:
# 256x256 batch 8; cityscapes_gpu: 256x512 batch 5; one GPU):
#   oasis_tf (tools/bench.py) in float32, mixed_float16 and mixed_bfloat16, each
#   without and with XLA; the official code (tools/bench_official.py, a checkout of
#   https://github.com/boschresearch/OASIS given by --official_root or $OFFICIAL_ROOT,
#   needs torch with CUDA) in float32, as the paper trained.
# Each case runs in its own process and reports train images/s, step time, generator
# images/s and the device's peak memory. All cases go to one JSON file
# (default gpu_bench.json): {"cases": [one record per case], ...}; every oasis_tf
# record also has "vs_official" (its speeds and memory over the official's).
#
# Time: the whole run stops within --budget seconds (default 450, under 8 minutes
# with the start-up); each case may take at most $GPU_BENCH_CASE_TIMEOUT_S (180).
# Cases run most important first (no XLA before XLA); one that does not fit the
# rest of the budget is recorded as skipped, with the reason.
# Without a GPU (TensorFlow sees none) it says so and exits 0 (nothing written),
# unless --cpu_dry_run.
#
# Environment: PYTHON (default: the repository's .venv/bin/python, else python3),
# OFFICIAL_ROOT, GPU_BENCH_CONFIGS ("ade20k_gpu cityscapes_gpu"),
# GPU_BENCH_PRECISIONS ("float32 mixed_float16 mixed_bfloat16"),
# GPU_BENCH_XLA ("false true"), GPU_BENCH_ITERS (10), GPU_BENCH_WARMUP (2),
# GPU_BENCH_GEN_ITERS (10), GPU_BENCH_CASE_TIMEOUT_S (180).
set -u

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
OFFICIAL_ROOT="${OFFICIAL_ROOT:-}"
OUTPUT="gpu_bench.json"
BUDGET=450
DRY=0
LIST=0
CONFIGS="${GPU_BENCH_CONFIGS:-ade20k_gpu cityscapes_gpu}"
PRECISIONS="${GPU_BENCH_PRECISIONS:-float32 mixed_float16 mixed_bfloat16}"
XLAS="${GPU_BENCH_XLA:-false true}"
ITERS="${GPU_BENCH_ITERS:-10}"
WARMUP="${GPU_BENCH_WARMUP:-2}"
GEN_ITERS="${GPU_BENCH_GEN_ITERS:-10}"
CASE_TIMEOUT="${GPU_BENCH_CASE_TIMEOUT_S:-180}"
CLONE="git clone https://github.com/boschresearch/OASIS"

usage() { sed -n '2,32p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --official_root) OFFICIAL_ROOT="${2:?--official_root needs a folder}"; shift 2 ;;
    --official_root=*) OFFICIAL_ROOT="${1#*=}"; shift ;;
    --output) OUTPUT="${2:?--output needs a file}"; shift 2 ;;
    --output=*) OUTPUT="${1#*=}"; shift ;;
    --budget) BUDGET="${2:?--budget needs seconds}"; shift 2 ;;
    --budget=*) BUDGET="${1#*=}"; shift ;;
    --cpu_dry_run) DRY=1; shift ;;
    --list) LIST=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

# The cases, most important first: "impl config precision xla".
cases() {
  local config precision
  for config in $CONFIGS; do
    echo "official_pytorch $config float32 false"
    for precision in $PRECISIONS; do
      case " $XLAS " in *" false "*) echo "oasis_tf $config $precision false" ;; esac
    done
  done
  case " $XLAS " in *" true "*)
    for config in $CONFIGS; do
      for precision in $PRECISIONS; do echo "oasis_tf $config $precision true"; done
    done ;;
  esac
}

if [ "$LIST" = 1 ]; then
  cases
  exit 0
fi

if [ "$DRY" = 1 ]; then
  export CUDA_VISIBLE_DEVICES=""
  ITERS=1; WARMUP=1; GEN_ITERS=1
  echo "gpu_bench: CPU dry run: every case on the CPU at a tiny size (not a measurement)"
else
  GPUS=$(TF_CPP_MIN_LOG_LEVEL=3 "$PYTHON" -c \
    "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))" 2>/dev/null | tail -1)
  if [ -z "$GPUS" ]; then
    echo "gpu_bench: could not import TensorFlow with $PYTHON (set PYTHON=...); nothing run"
    exit 1
  fi
  if [ "$GPUS" = 0 ]; then
    echo "gpu_bench: no GPU: TensorFlow sees none (tf.config.list_physical_devices('GPU')" \
         "is empty), so there is nothing to benchmark here; nothing run, nothing written." \
         "Run it on a machine with a GPU (--cpu_dry_run checks the script on the CPU)."
    exit 0
  fi
fi

OFFICIAL_MISSING=""
if [ -z "$OFFICIAL_ROOT" ]; then
  OFFICIAL_MISSING="no official checkout given (--official_root DIR or OFFICIAL_ROOT=DIR; get one with \`$CLONE\`)"
elif [ ! -f "$OFFICIAL_ROOT/models/generator.py" ]; then
  OFFICIAL_MISSING="$OFFICIAL_ROOT is not a checkout of the official code (no models/generator.py; get one with \`$CLONE\`)"
fi
if [ -n "$OFFICIAL_MISSING" ]; then
  echo "gpu_bench: $OFFICIAL_MISSING: the official cases are recorded as skipped"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu_bench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
RECORDS="$WORK/records.jsonl"
: > "$RECORDS"
START=$SECONDS
n=0
while read -r impl config precision xla; do
  n=$((n + 1))
  name="$impl/$config/$precision/xla=$xla"
  out="$WORK/case$n.jsonl"
  left=$((BUDGET - (SECONDS - START)))
  limit=$CASE_TIMEOUT
  [ "$left" -lt "$limit" ] && limit=$left
  reason=""
  kind=skipped
  if [ "$impl" = official_pytorch ] && [ -n "$OFFICIAL_MISSING" ]; then
    reason="$OFFICIAL_MISSING"
  elif [ "$limit" -lt 30 ]; then
    reason="time budget: ${left} s of --budget $BUDGET left"
  fi
  size=()
  if [ "$DRY" = 1 ]; then  # tiny stand-ins of the GPU configurations, same aspect
    case "$config" in cityscapes*) dsize=64x128 ;; *) dsize=64 ;; esac
    if [ "$impl" = oasis_tf ]; then size=(--config tiny --image_size "$dsize" --batch 1)
    else size=(--config small --image_size "$dsize" --batch 1 --num_classes 12); fi
  else
    size=(--config "$config")
  fi
  if [ -z "$reason" ]; then
    echo "gpu_bench: [$n] $name (at most ${limit} s)"
    if [ "$impl" = oasis_tf ]; then
      cmd=("$PYTHON" "$REPO/tools/bench.py" "${size[@]}" --precision "$precision"
           --xla "$xla" --iters "$ITERS" --warmup "$WARMUP" --gen_iters "$GEN_ITERS"
           --threads "$(nproc 2>/dev/null || echo 2)" --nomatmul --output "$out")
    else
      device=cuda; [ "$DRY" = 1 ] && device=cpu
      cmd=("$PYTHON" "$REPO/tools/bench_official.py" --official_root "$OFFICIAL_ROOT"
           "${size[@]}" --device "$device" --threads "$(nproc 2>/dev/null || echo 2)"
           --iters "$ITERS" --warmup "$WARMUP" --gen_iters "$GEN_ITERS" --output "$out")
    fi
    PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" timeout --kill-after=10 "$limit" \
      "${cmd[@]}" > "$WORK/case$n.log" 2>&1
    rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
      reason="timed out after ${limit} s"; kind=error
    elif [ ! -s "$out" ]; then
      kind=error; reason="failed (exit $rc): $(tail -c 1500 "$WORK/case$n.log")"
    fi
  else
    echo "gpu_bench: [$n] $name skipped: $reason"
  fi
  CASE="$name" IMPL="$impl" CONFIG="$config" PRECISION="$precision" XLA="$xla" \
  REASON="$reason" KIND="$kind" OUT="$out" DRY="$DRY" "$PYTHON" - >> "$RECORDS" <<'EOF'
import json, os
record = {}
if not os.environ["REASON"] and os.path.exists(os.environ["OUT"]):
    with open(os.environ["OUT"]) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    record = lines[-1] if lines else {}
if os.environ["REASON"]:
    record[os.environ["KIND"]] = os.environ["REASON"]
if "config" in record and record["config"] != os.environ["CONFIG"]:
    record["ran_config"] = record["config"]  # the dry run's tiny stand-in
record.update(case=os.environ["CASE"], implementation=os.environ["IMPL"],
              config=os.environ["CONFIG"], precision=os.environ["PRECISION"],
              xla=os.environ["XLA"] == "true", dry_run=os.environ["DRY"] == "1")
print(json.dumps(record))
EOF
  [ -n "$reason" ] || echo "gpu_bench:     $(tail -1 "$RECORDS" | cut -c1-300)"
done < <(cases)

ELAPSED=$((SECONDS - START)) OUTPUT="$OUTPUT" RECORDS="$RECORDS" BUDGET="$BUDGET" \
OFFICIAL_ROOT="$OFFICIAL_ROOT" DRY="$DRY" "$PYTHON" - <<'EOF'
import json, os, platform, time
with open(os.environ["RECORDS"]) as f:
    cases = [json.loads(line) for line in f if line.strip()]
official = {c["config"]: c for c in cases
            if c["implementation"] == "official_pytorch" and "sec_per_iter" in c}
for c in cases:
    ref = official.get(c["config"])
    if c["implementation"] == "oasis_tf" and ref and "sec_per_iter" in c and not c["dry_run"]:
        ratio = lambda a, b: round(a / b, 3) if a and b else None  # noqa: E731
        c["vs_official"] = {
            "train_speed": ratio(c.get("train_images_per_sec"), ref.get("train_images_per_sec")),
            "gen_speed": ratio(c.get("gen_images_per_sec"), ref.get("gen_images_per_sec")),
            "peak_memory": ratio(c.get("peak_memory_mb"), ref.get("peak_memory_mb"))}
names = sorted({c.get("device_name") for c in cases if c.get("device_name")})
report = {"tool": "tools/gpu_bench.sh", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
          "host": platform.node(), "device_names": names, "dry_run": os.environ["DRY"] == "1",
          "official_root": os.environ["OFFICIAL_ROOT"] or None,
          "budget_s": int(os.environ["BUDGET"]), "elapsed_s": int(os.environ["ELAPSED"]),
          "cases": cases}
with open(os.environ["OUTPUT"], "w") as f:
    json.dump(report, f, indent=1)
done = sum("sec_per_iter" in c for c in cases)
print(f"gpu_bench: {len(cases)} cases ({done} measured) in {report['elapsed_s']} s -> "
      f"{os.environ['OUTPUT']}")
EOF
