#!/bin/bash
# Session 49 (results/NOTES.md "Session 49"): MBV2_TICKET=acq_rel (kernels/cblock.cu's cross-cluster ticket as one
# atom.acq_rel.gpu) against MBV2_TICKET=sc (__threadfence() around the atomic) at batch 1, in ONE device call (call 11
# ran it at 7addb9c, where sc was the built default; acq_rel is since 19f9445, so the arms name both values):
#   1. the GPU tests under acq_rel (tests.log): by default the default plan's end-to-end tests at batch 1 and fuse
#      v51's at batch 1 / 2, against ONNX Runtime (the 7x7 exdwpw6 launches run the ticket at batch 1);
#   2. the A/B (ab.log, ab.json): fuse v51 on the committed picks, the arms in interleaved processes (ARMS, default
#      "sc acq_rel sc acq_rel sc acq_rel"; "-" = unset), 2 instances each (scripts/e2e_ab.py: logits checked against ONNX
#      Runtime first);
#   3. the prefix times of both arms (prefix_<arm>.json / .log in prefix.tgz).
# KCACHE / KCACHE2: build-cache tarballs (scripts/cache_prefill.py), unpacked in that order.
# Usage: scripts/ticket_device.sh OUT   env: KCACHE, KCACHE2, END (default 560), ARMS, TEST_FILES, TEST_K
OUT=${1:?usage: $0 OUT}
export END=${END:-560}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
if [ -n "$KCACHE2" ]; then
  tar -xf "$KCACHE2" -C "$MBV2_CACHE" && echo "[cache: $(ls "$MBV2_CACHE/kernels" | wc -l) builds with $KCACHE2]"
fi
export MBV2_TICKET=acq_rel
gpu_tests "${TEST_FILES:-tests/test_custom_e2e.py}" \
  "${TEST_K:-(test_e2e_matches_onnxruntime and not 8 and not 64) or (fuse_v50 and v51)}" 150
unset MBV2_TICKET
ab_arms MBV2_TICKET "${ARMS:-sc acq_rel sc acq_rel sc acq_rel}" "fuse=v51,picks=$P;fuse=v51,picks=$P"
mkdir -p /tmp/prefix
for n in sc acq_rel; do
  [ "$(left 60)" -lt 30 ] && { echo "[prefix $n skipped: no time left]"; continue; }
  MBV2_TICKET=$n timeout "$(left 60)" python3 scripts/plan_prefix_times.py --batch 1 \
    --kernels fuse=v51 --picks "$P" --rounds 3 --json "/tmp/prefix/prefix_$n.json" > "/tmp/prefix/prefix_$n.log" 2>&1
  echo "[prefix $n rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix/prefix_$n.log")"
done
tar -czf "$OUT/prefix.tgz" -C /tmp prefix
