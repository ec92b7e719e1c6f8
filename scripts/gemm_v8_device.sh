#!/bin/bash
# gemm v8 - v11 device call: build, timing (per layer + e2e), GPU tests, SASS summary. Usage: scripts/gemm_v8_device.sh $OUT
# env: TIME_S / TEST_S (timeouts), TIME_ARGS (extra args of gemm_v8_time.py), TEST_K (pytest -k of the kernel tests),
# SASS_FUNS (kernels summarised), NCU_S / NCU_ARGS (ncu of the plan's GEMMs), PLT_S / PLT_SPECS (plan_launch_times at
# batch 64), AB_S / AB_SPECS / AB_BATCHES (e2e_ab), E2E_S, SAN_S (see below)
OUT=${1:?usage: $0 OUT}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
t0=$(date +%s)
python3 -c "from impls import _custom_kernels as K; K.build_all('90')" || exit 1
echo "[build $(( $(date +%s) - t0 ))s]"
c=$(ls "${MBV2_CACHE:-$HOME/.cache/mbv2}"/kernels/gemm-sm90*.cubin | head -1)
for f in ${SASS_FUNS:-gemm_v8_128x128_8x8 gemm_v8_128x64_8x4 gemm_v8_64x160_4x8}; do
  cuobjdump -sass -fun $f $c > $OUT/sass_$f.txt 2>&1
  echo "$f: $(grep -c 'FFMA' $OUT/sass_$f.txt) FFMA, $(grep -c 'LDS' $OUT/sass_$f.txt) LDS ($(grep -c 'LDS.128' $OUT/sass_$f.txt) .128), $(grep -c 'LDGSTS' $OUT/sass_$f.txt) LDGSTS, $(grep -c 'BAR' $OUT/sass_$f.txt) BAR, $(grep -cE 'LDL|STL' $OUT/sass_$f.txt) LDL/STL, $(grep -cE '^ +/\*[0-9a-f]+\*/' $OUT/sass_$f.txt) instr"
done
timeout ${TIME_S:-110} python3 scripts/gemm_v8_time.py --json $OUT/gemm_v8_times.json $TIME_ARGS > $OUT/gemm_v8_time.log 2>&1
echo "[time rc=$? $(( $(date +%s) - t0 ))s]"
timeout ${TEST_S:-110} python3 -m pytest -q -m gpu tests/test_custom_kernels.py -k "${TEST_K:-v8}" -p no:cacheprovider --maxfail=20 > $OUT/gemm_v8_tests.log 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^FAILED|passed|failed" $OUT/gemm_v8_tests.log | tail -12
if [ -n "$NCU_S" ]; then  # the plan's GEMM kernels (default: batch 256, gemm v8) under Nsight Compute
  timeout $NCU_S ncu --clock-control none --profile-from-start off --kernel-name regex:"gemm_v[48]" \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy \
    python3 scripts/ncu_kernels.py ${NCU_ARGS:---batch 256 --kernels gemm=v8} > $OUT/ncu_v8.txt 2>&1
  echo "[ncu rc=$? $(( $(date +%s) - t0 ))s]"
  grep -E "^  gemm_v|Duration|SM Frequency|Compute \(SM\) Throughput|Issue Slots Busy|Warp Cycles Per Issued|Achieved Occupancy" \
    $OUT/ncu_v8.txt | awk '/^  gemm_v/{printf "\n%s", $1; next} {printf " | %s %s", $(NF-1), $NF}' | tail -25; echo
fi
if [ -n "$E2E_S" ]; then  # end-to-end correctness (every custom e2e test, defaults = gemm v8) against ONNX Runtime
  timeout $E2E_S python3 -m pytest -q -m gpu tests/test_custom_e2e.py -p no:cacheprovider > $OUT/gemm_v8_e2e_tests.log 2>&1
  echo "[e2e tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^FAILED|passed|failed" $OUT/gemm_v8_e2e_tests.log | tail -8
fi
if [ -n "$SAN_S" ]; then  # compute-sanitizer racecheck + memcheck on the v8 odd-shape tests (every tile)
  for tool in racecheck memcheck; do
    MBV2_NO_POOL=1 timeout $SAN_S compute-sanitizer --tool $tool python3 -m pytest -q -m gpu tests/test_custom_kernels.py \
      -k "v8_tile_odd" -p no:cacheprovider > $OUT/gemm_v8_$tool.log 2>&1
    echo "[$tool rc=$? $(( $(date +%s) - t0 ))s] $(grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed" $OUT/gemm_v8_$tool.log | tr '\n' ' ')"
  done
fi
if [ -n "$PLT_S" ]; then  # each launch of the batch-64 plan timed alone
  timeout $PLT_S python3 scripts/plan_launch_times.py --batches 64 --specs "${PLT_SPECS:-gemm=v10;gemm=v11}" \
    > $OUT/plt_bs64.log 2>&1
  echo "[plt rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^==|sum of" $OUT/plt_bs64.log
fi
if [ -n "$AB_S" ]; then  # interleaved end-to-end A/B (CUDA graph)
  timeout $AB_S python3 scripts/e2e_ab.py --batches "${AB_BATCHES:-8,64,256}" --specs "${AB_SPECS:-gemm=v10;gemm=v11}" \
    --rounds 5 --json $OUT/ab.json > $OUT/ab.log 2>&1
  echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"; tail -20 $OUT/ab.log
fi
grep -vE "^\{|^bs.*op[0-9]+ +[0-9. ]+$|^bs  op" $OUT/gemm_v8_time.log | tail -40
