#!/bin/bash
# Sessions 28 - 30 (results/NOTES.md "Session 28" - "Session 30"; NOT run yet): the hand-off between launches at batch
# 1. First the probe (scripts/handoff_probe.py: chains of launches shaped like batch 1's, griddepcontrol.wait against
# per-tile flags and a persistent kernel), then the real thing: fuse v43 (v42 + the flag hand-off between its exdwpw6
# launches, impls/_custom_flags.py) and v44 (v43 + the exdwpw5 launches after the first in the hand-off) against v42,
# all replaying the committed run's batch-1 picks, two instances each, interleaved (scripts/e2e_ab.py: each plan's
# logits checked against ONNX Runtime first), then v43 / v44's GPU tests (bit-identical to v42 over poisoned replays
# and after a cut-off forward, batch 1 - 3). KCACHE: a build cache tarball (scripts/cache_prefill.py --flags) unpacked
# into $MBV2_CACHE first.
# Usage: scripts/flags_device.sh OUT   env: KCACHE, PROBE_T / AB_T / TEST_T (timeouts, s), END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
timeout $(left ${PROBE_T:-120}) python3 scripts/handoff_probe.py --json "$OUT/handoff.json" > "$OUT/handoff.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "per (launch|step)|skipped|Error|error" "$OUT/handoff.log" | tail -50
P="$OUT/picks_bs1.json"
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" || exit 1
ab_step "fuse=v42,picks=$P;fuse=v43,picks=$P;fuse=v44,picks=$P;fuse=v42,picks=$P;fuse=v43,picks=$P;fuse=v44,picks=$P" 240 20
timeout $(left ${TEST_T:-200}) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE tests/test_custom_e2e.py \
  -k "flag_handoff" > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | cut -c1-300 | tail -10
