#!/bin/bash
# Session 30, call 2 (results/NOTES.md "Session 30"): fuse v43 measured 13 us SLOWER than v42 at batch 1 (call 1).
# Which part costs it? 1. the hand-off probe (scripts/handoff_probe.py; call 1 stopped at its own argument check),
# 2. each launch's marginal time in v42's and v43's graphs on the committed picks (scripts/plan_prefix_times.py),
# 3. v42 against v43 with the flag twins' measuring variants (MBV2_FLAG_EXTRA, kernels/cblock.cu EXDWPW6_FLAG_*:
# relaxed polls, one polling thread, the trigger before the flag store, the grid wait with the flags still published),
# each in its own process, two instances each interleaved, 4. v44's batch-3 GPU tests (call 1's two failures were the
# test's own expectation). Usage: scripts/flag_variants_device.sh OUT   env: KCACHE, END (default 560)
OUT=${1:?usage: $0 OUT}
. "$(dirname "$0")/device_lib.sh"
device_start "$OUT"
timeout $(left 120) python3 scripts/handoff_probe.py --json "$OUT/handoff.json" > "$OUT/handoff.log" 2>&1
echo "[probe rc=$? $(( $(date +%s) - t0 ))s]"; grep -vE "^handoff probe" "$OUT/handoff.log" | cut -c1-150 | tail -50
P="$OUT/picks_bs1.json"
python3 -m mbv2 picks results/h200/run.json --bench "test_e2e[custom-fp32-graph-bs1]" --out "$P" > /dev/null || exit 1
for v in v42 v43; do
  timeout $(left 90) python3 scripts/plan_prefix_times.py --batch 1 --kernels "fuse=$v" --picks "$P" --rounds 3 \
    --json "$OUT/prefix_$v.json" > "$OUT/prefix.log" 2>&1
  echo "[prefix $v rc=$? $(( $(date +%s) - t0 ))s]"; cut -c1-110 "$OUT/prefix.log" | tail -22
done
S="fuse=v42,picks=$P;fuse=v43,picks=$P;fuse=v42,picks=$P;fuse=v43,picks=$P"
for x in "" "-DEXDWPW6_FLAG_POLL=1" "-DEXDWPW6_FLAG_POLL=2" "-DEXDWPW6_FLAG_TRIGGER=1" "-DEXDWPW6_FLAG_GRIDWAIT=1" \
    "-DEXDWPW6_FLAG_POLL=2 -DEXDWPW6_FLAG_TRIGGER=1"; do
  echo "== variant '${x:-v43 as built}'" >> "$OUT/variants.log"
  MBV2_FLAG_EXTRA="$x" timeout $(left 60) python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --rounds 5 --specs "$S" \
    >> "$OUT/variants.log" 2>&1
  echo "[variant '${x:-v43}' rc=$? $(( $(date +%s) - t0 ))s]"
  grep -E "^ab " "$OUT/variants.log" | tail -4 | sed -E 's/,picks=[^ ]*//; s/ +launches.*//'
done
# the SASS of one v43 flag twin and its plain build: what the acquire polls and the release store compile to
CUOBJ=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
SPEC=exdwpw6_c24x16_t512_m5210e1fz_s14x14_64_384_64_14x14_1_2_1101
for fl in False True; do
  c=$(python3 -c "import sys; sys.path.insert(0, '.'); from impls import _custom_kernels as K
b, m, s = K.exdwpw6_spec_parse('$SPEC'); print(K.build_exdwpw6_spec(b, m, '90', K.find_nvcc(), s, flags=$fl).path)")
  echo "== $(basename "$c"): $("$CUOBJ" -sass "$c" | grep -cE '^ +/\*[0-9a-f]{4}\*/') instructions"
  "$CUOBJ" -sass "$c" | grep -E "MEMBAR|CCTL|FENCE|ERRBAR|STRONG|NANOSLEEP|ACQ|REL|UCGABAR|SYNCS|DEPBAR|CCTL" |
    sed -E 's#/\*[^*]*\*/##g; s/ +/ /g; s/;//' | sort | uniq -c | sort -rn | head -25
done > "$OUT/sass.txt" 2>&1
head -60 "$OUT/sass.txt"
T=tests/test_custom_e2e.py::test_e2e_fuse_v43_flag_handoff_matches_onnxruntime
timeout $(left 120) python3 -m pytest -q -m gpu -p no:cacheprovider -rfE "$T[3-v44-eager]" "$T[3-v44-graph]" \
  > "$OUT/tests.log" 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests.log" | cut -c1-300 | tail -5
rm -f "$OUT/prefix.log" "$OUT/smi.txt" "$OUT/picks_bs1.json"
