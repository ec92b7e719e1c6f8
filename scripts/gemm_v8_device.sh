#!/bin/bash
# gemm v8 device call: build, timing (per layer + e2e), GPU tests, SASS summary. Usage: scripts/gemm_v8_device.sh $OUT
# env: TIME_S / TEST_S (timeouts), TIME_ARGS (extra args of gemm_v8_time.py), TEST_K (pytest -k of the kernel tests)
OUT=${1:?usage: $0 OUT}
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
t0=$(date +%s)
python3 -c "from impls import _custom_kernels as K; K.build_all('90')" || exit 1
echo "[build $(( $(date +%s) - t0 ))s]"
c=$(ls ~/.cache/mbv2/kernels/gemm-sm90-*.cubin | head -1)
for f in gemm_v8_128x128_8x8 gemm_v8_128x64_8x4 gemm_v8_64x160_4x8; do
  cuobjdump -sass -fun $f $c > $OUT/sass_$f.txt 2>&1
  echo "$f: $(grep -c 'FFMA' $OUT/sass_$f.txt) FFMA, $(grep -c 'LDS' $OUT/sass_$f.txt) LDS ($(grep -c 'LDS.128' $OUT/sass_$f.txt) .128), $(grep -c 'LDGSTS' $OUT/sass_$f.txt) LDGSTS, $(grep -c 'BAR' $OUT/sass_$f.txt) BAR, $(grep -cE 'LDL|STL' $OUT/sass_$f.txt) LDL/STL, $(grep -cE '^ +/\*[0-9a-f]+\*/' $OUT/sass_$f.txt) instr"
done
timeout ${TIME_S:-110} python3 scripts/gemm_v8_time.py --json $OUT/gemm_v8_times.json $TIME_ARGS > $OUT/gemm_v8_time.log 2>&1
echo "[time rc=$? $(( $(date +%s) - t0 ))s]"
timeout ${TEST_S:-110} python3 -m pytest -q -m gpu tests/test_custom_kernels.py -k "${TEST_K:-v8}" -p no:cacheprovider --maxfail=20 > $OUT/gemm_v8_tests.log 2>&1
echo "[tests rc=$? $(( $(date +%s) - t0 ))s]"; grep -E "^FAILED|passed|failed" $OUT/gemm_v8_tests.log | tail -12
if [ -n "$NCU_S" ]; then  # the plan's GEMM kernels at batch 256 with gemm v8 under Nsight Compute
  timeout $NCU_S ncu --clock-control none --profile-from-start off --kernel-name regex:"gemm_v[48]" \
    --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy \
    python3 scripts/ncu_kernels.py --batch 256 --kernels gemm=v8 > $OUT/ncu_v8.txt 2>&1
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
grep -vE "^\{|^bs.*op[0-9]+ +[0-9. ]+$|^bs  op" $OUT/gemm_v8_time.log | tail -40
