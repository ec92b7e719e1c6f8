#!/bin/bash
# The committed benchmark run of a GPU (session 28; the README's tables come from these): the full bench, every
# backend the issue compares, fp32 and fp16, torch.compile included, into OUT/run.json and OUT/bench.log. Back on the
# host: copy both to results/<gpu>/ and render the report there (python -m mbv2 report results/<gpu>/run.json --out
# results/<gpu>/report). About 440 s on a warm H200; KCACHE (a build cache tarball, scripts/cache_prefill.py) spares
# a cold machine most of its compiles.
# Usage (GPU machine, repo root): scripts/bench_device.sh OUT   env: KCACHE, BENCH_T (s, default 560), END
OUT=${1:?usage: $0 OUT}
export MBV2_CACHE=${MBV2_CACHE:-$PWD/.cache}
END=${END:-590}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
set -o pipefail
timeout $(left ${BENCH_T:-560}) make bench NOVENV=1 RUN_JSON="$OUT/run.json" \
  BENCH_ARGS="--backends custom,cudnn,torch --compile --dtypes fp32,fp16" 2>&1 | tee "$OUT/bench.log" | grep -E \
  "passed|failed|error" | tail -4
rc=$?
echo "[bench rc=$rc $(( $(date +%s) - t0 ))s]"
exit $rc
