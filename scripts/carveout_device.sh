#!/bin/bash
# Session 31 (results/NOTES.md "Session 31"): does the shared-memory carveout the driver picks per kernel cost time
# between the batch-1 plan's 19 launches? MBV2_CARVEOUT gives every kernel of the backend one carveout (a function
# attribute: one value per process), so each arm runs in its own process, interleaved: unset (the driver's default),
# 100 (the most shared memory: every kernel the same configuration) and 0 (the least shared memory each kernel fits).
# Each process times 3 instances of fuse v42 replaying the committed run's batch-1 picks (scripts/e2e_ab.py, logits
# checked against ONNX Runtime first). Then the per-launch prefix times of the unset and 100 arms, and ncu's
# "shared memory configuration size" of every launch in both (what the driver picked; MBV2_PDL=0, as under ncu in
# session 23). KCACHE: a build cache tarball (scripts/cache_prefill.py).
# Usage: scripts/carveout_device.sh OUT   env: KCACHE, ARMS (default "- 100 0 - 100 0 - 100 0"; "-" = unset), END
# (Session 31 ran it with its own copy of the per-arm loop; it runs device_lib.sh ab_arms since, the same processes.)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
P="$OUT/picks_v42_bs1.json"
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" > /tmp/picks.log 2>&1 ||
  { cat /tmp/picks.log; exit 1; }
S="fuse=v42,picks=$P;fuse=v42,picks=$P;fuse=v42,picks=$P"
val() { [ "$1" = "-" ] && echo "" || echo "$1"; }
ab_arms MBV2_CARVEOUT "${ARMS:-- 100 0 - 100 0 - 100 0}" "$S"
for c in - 100; do
  n=$([ "$c" = "-" ] && echo default || echo "$c")
  MBV2_CARVEOUT=$(val "$c") timeout "$(left 120)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=v42 \
    --picks "$P" --rounds 3 --json "$OUT/prefix_$n.json" > "/tmp/prefix_$n.log" 2>&1
  echo "[prefix $n rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix_$n.log")"
done
M=launch__shared_mem_config_size,launch__shared_mem_per_block_dynamic,launch__shared_mem_per_block_static,gpu__time_duration.sum
for c in - 100; do
  n=$([ "$c" = "-" ] && echo default || echo "$c")
  MBV2_CARVEOUT=$(val "$c") MBV2_PDL=0 MBV2_TUNE_PICKS="$P" timeout "$(left 150)" ncu --clock-control none \
    --profile-from-start off --csv --page raw --metrics "$M" python3 scripts/ncu_kernels.py --backend custom \
    --dtype fp32 --batch 1 --kernels fuse=v42 > "$OUT/ncu_$n.csv" 2> "/tmp/ncu_$n.err"
  echo "[ncu $n rc=$? $(( $(date +%s) - t0 ))s]"; tail -2 "/tmp/ncu_$n.err"
  python3 - "$OUT/ncu_$n.csv" <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if r]
head = next((i for i, r in enumerate(rows) if "Kernel Name" in r), None)
if head is None:
    print("no ncu table"); sys.exit()
h = rows[head]
col = {k: h.index(k) for k in h}
for r in rows[head + 2:]:
    if len(r) != len(h):
        continue
    print(f"  {r[col['Kernel Name']][:44]:44s} config {r[col['launch__shared_mem_config_size']]:>8} "
          f"dyn {r[col['launch__shared_mem_per_block_dynamic']]:>8} static {r[col['launch__shared_mem_per_block_static']]:>6} "
          f"t {r[col['gpu__time_duration.sum']]}")
PY
done
rm -f "$P"
