#!/bin/bash
# Session 20, call 2 (results/NOTES.md "Session 20"): block0 v4 as the default on the GPU: the default end to end
# against ONNX Runtime, fuse v24's checks (block0 v4 has no fixed build at batch 1), PDL, block0 v3 / v4 end to end
# and on the model variants; then a custom-only `make bench` (fp32, every batch; fp16 runs hblock0, unchanged) at this commit.
# Usage: scripts/session20_check_device.sh OUT
OUT=${1:?usage: $0 OUT}
export PYTHONUNBUFFERED=1
t0=$(date +%s)
timeout 200 python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py tests/test_custom_block0.py \
  -k "test_e2e_matches_onnxruntime or fuse_v24 or pdl_launches or (e2e_block0 and not v1 and not v2)" \
  > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | tail -8
timeout 240 make bench NOVENV=1 RUN_JSON="$OUT/run_custom.json" BENCH_ARGS="--backends custom --dtypes fp32" \
  > "$OUT/bench.log" 2>&1
echo "[bench rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "passed|failed|Error" "$OUT/bench.log" | tail -4
python3 - "$OUT/run_custom.json" <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
for b in d["benchmarks"]:
    ex = b.get("extra_info", {})
    if ex.get("kind") == "e2e":
        print(f"{b['name'][:60]:60s} device {ex['device_ms']:.4f} ms  {ex['images_per_s']:10.0f} img/s")
PY
