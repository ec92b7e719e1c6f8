#!/bin/bash
# Every `gpu`-marked test (not the slow soak) in one device call: the suite split into SHARDS parts with pytest's
# --shard I/N (conftest.py), each part on its own GPU, all at once. Logs go to OUT/shards/ and OUT/shards.tgz; the
# summary prints each shard's last line and every FAILED / ERROR / SKIPPED line (a skip with its reason). Exit 0
# only if every shard ran and passed.
# The tests marked exclusive_gpu (device-wide state: cudaMemGetInfo) are left out of the parallel runs
# (--exclusive defer) and run after them, each shard's alone on GPU 0 (--exclusive only): with shards sharing a GPU,
# session 31's leak test read another shard's allocations.
# Usage (GPU machine, repo root): scripts/test_gpu_shards.sh OUT
#   env: SHARDS (default: the number of GPUs), ONLY ("2 4": run only these shards, e.g. 2 of 4 on one GPU across
#   calls), MARK (default "gpu and not slow"), KCACHE (a build cache tarball, scripts/cache_prefill.py), END (the
#   seconds this call may take, default 560; every shard stops there), TESTS (default "tests"), PYTEST_EXTRA (more
#   pytest arguments). More shards than GPUs share them round robin.
OUT=${1:?usage: $0 OUT}
export MBV2_CACHE=${MBV2_CACHE:-$PWD/.cache}  # shared: builds land by rename, so concurrent shards are safe
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
[ "$NGPU" -ge 1 ] || { echo "test_gpu_shards: no GPU (nvidia-smi -L lists none)"; exit 2; }
N=${SHARDS:-$NGPU}
ONLY=${ONLY:-$(seq 1 "$N")}
L="$OUT/shards"; mkdir -p "$L"
echo "[shards: $N over $NGPU GPU(s), running: $(echo $ONLY); mark: ${MARK:-gpu and not slow}]"
pids=()
k=0
for i in $ONLY; do
  g=$(( k % NGPU )); k=$(( k + 1 ))
  CUDA_VISIBLE_DEVICES=$g timeout "$(left 10000)" python3 -m pytest ${TESTS:-tests} -q -m "${MARK:-gpu and not slow}" \
    -p no:cacheprovider -rfEs --durations=15 --shard "$i/$N" --exclusive defer $PYTEST_EXTRA > "$L/shard$i.log" 2>&1 &
  pids+=("$!:$i")
done
rc_all=0
for pi in "${pids[@]}"; do
  wait "${pi%%:*}"; rc=$?; i=${pi##*:}
  echo "[shard $i/$N rc=$rc $(( $(date +%s) - t0 ))s] $(tail -1 "$L/shard$i.log" | cut -c1-200)"
  [ "$rc" -eq 0 ] || rc_all=1
done
for i in $ONLY; do  # each shard's exclusive_gpu tests, alone on the GPU (pytest's 5: the shard has none)
  CUDA_VISIBLE_DEVICES=0 timeout "$(left 10000)" python3 -m pytest ${TESTS:-tests} -q -m "${MARK:-gpu and not slow}" \
    -p no:cacheprovider -rfEs --shard "$i/$N" --exclusive only $PYTEST_EXTRA > "$L/shard${i}x.log" 2>&1
  rc=$?
  [ "$rc" -eq 5 ] && continue
  echo "[shard $i/$N exclusive rc=$rc $(( $(date +%s) - t0 ))s] $(tail -1 "$L/shard${i}x.log" | cut -c1-200)"
  [ "$rc" -eq 0 ] || rc_all=1
done
grep -hE "^(FAILED|ERROR|SKIPPED)" "$L"/shard*.log | cut -c1-300 | head -40
tar -czf "$OUT/shards.tgz" -C "$OUT" shards
exit $rc_all
