#!/usr/bin/env bash
# The CUDA paths in one go, for a lent GPU machine, in well under 5 minutes:
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default benchmarks/results/gpu)
# 1. training steps under bf16 autocast, model FLOPs and MFU against the bf16 matmul rate, memory
#    (benchmarks/train_scale.py --device cuda, the CPU script's JSON);
# 2. a real run: simulate -> train 50 steps on cuda -> sample on cuda -> export -> sample the ONNX
#    file with onnxruntime's CUDA provider when onnxruntime-gpu is installed (CPU provider otherwise);
# 3. torchrun with NCCL on every GPU present (skipped with one GPU; two gloo processes on a CPU).
# Each part's time and exit status go to OUT_DIR/gpu_check.json.
# DEVICE=cpu SKIP_TRAIN_SCALE=1 bash benchmarks/gpu_check.sh /tmp/x   rehearses the script on a CPU.
set -uo pipefail
OUT=${1:-benchmarks/results/gpu}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
PY=${PYTHON:-python}
WORK=$(mktemp -d)
declare -A STATUS SECONDS_TAKEN

part() {  # part NAME COMMAND...: run it, keep its exit status and time
  local name=$1; shift
  local start=$EPOCHREALTIME
  "$@" >"$OUT/$name.log" 2>&1
  STATUS[$name]=$?
  SECONDS_TAKEN[$name]=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  echo "$name: exit ${STATUS[$name]} in ${SECONDS_TAKEN[$name]} s (log $OUT/$name.log)"
}

if [ "$DEVICE" = cuda ]; then
  $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())" || exit 1
fi
[ -n "${SKIP_TRAIN_SCALE:-}" ] || part train_scale $PY benchmarks/train_scale.py --device "$DEVICE" --steps 10 --out "$OUT/train_scale_$DEVICE.json"
part simulate $PY -m synthscape -q simulate lung-ct --out "$WORK/data" --count 32 --size 32
part train $PY -m synthscape -q train lung-ct --data "$WORK/data" --model gan --out "$WORK/run" --steps 50 \
  --batch-size 8 --checkpoint-every 25 --eval-every 25 --device "$DEVICE"
part sample_torch $PY -m synthscape -q sample "$WORK/run" --count 64 --out "$WORK/s_torch" --device "$DEVICE" --batch-size 16
part export $PY -m synthscape -q export "$WORK/run" --out "$WORK/g.onnx"
if [ "$DEVICE" = cuda ] && $PY -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
  part sample_onnx $PY -m synthscape -q sample "$WORK/g.onnx" --count 64 --out "$WORK/s_onnx" --device cuda
else
  part sample_onnx $PY -m synthscape -q sample "$WORK/g.onnx" --count 64 --out "$WORK/s_onnx"
fi
# one process per GPU (NCCL); in a CPU rehearsal, two gloo processes
PROCS=$($PY -c "import torch; print(torch.cuda.device_count() if '$DEVICE' == 'cuda' else 2)")
if [ "$PROCS" -gt 1 ]; then
  part torchrun $PY -m torch.distributed.run --standalone --nproc_per_node="$PROCS" -m synthscape -q train \
    lung-ct --data "$WORK/data" --model gan --out "$WORK/run_ddp" --steps 20 --batch-size 8 --device "$DEVICE"
fi
{
  echo "{"
  echo "  \"device\": \"$($PY -c "import torch; print(torch.cuda.get_device_name() if '$DEVICE' == 'cuda' else 'cpu')")\","
  echo "  \"torch\": \"$($PY -c 'import torch; print(torch.__version__)')\","
  echo "  \"parts\": {"
  first=1
  for name in "${!STATUS[@]}"; do
    [ $first = 1 ] || echo ","
    printf '    "%s": {"exit": %s, "seconds": %s}' "$name" "${STATUS[$name]}" "${SECONDS_TAKEN[$name]}"
    first=0
  done
  echo ""
  echo "  }"
  echo "}"
} >"$OUT/gpu_check.json"
rm -rf "$WORK"
echo "wrote $OUT/gpu_check.json"
