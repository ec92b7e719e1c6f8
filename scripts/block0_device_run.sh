#!/bin/bash
# block0 (kernels/block0.cu) on the device: ptxas report + SASS opcode counts, GPU tests, timing, ncu.
#   scripts/block0_device_run.sh OUTDIR [TEST_TIMEOUT] [TIME_TIMEOUT] [NCU_TIMEOUT]
OUT=${1:?usage: $0 OUTDIR}
TT=${2:-110}
TM=${3:-60}
TN=${4:-45}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv >"$OUT/gpu.txt" 2>&1
nvcc -std=c++17 -O3 -lineinfo -arch=sm_90 -Xptxas -v -cubin -o /tmp/block0.cubin kernels/block0.cu >"$OUT/build.txt" 2>&1
if cuobjdump -sass /tmp/block0.cubin >/tmp/block0.sass 2>>"$OUT/build.txt"; then
    python3 - >>"$OUT/build.txt" <<'PY'
import collections, re
cur, counts = None, collections.OrderedDict()
for line in open("/tmp/block0.sass"):
    m = re.search(r"Function : (\S+)", line)
    if m:
        cur = m.group(1)
        counts[cur] = collections.Counter()
        continue
    m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]+)", line)
    if cur and m:
        counts[cur][m.group(1)] += 1
for k, c in counts.items():
    keys = [o for o in c if o.split(".")[0] in ("FFMA", "LDS", "STS", "LDG", "STG", "BAR", "BRA")]
    print(k, "total", sum(c.values()), {o: c[o] for o in sorted(keys)})
PY
fi
echo "== block0 tests (timeout ${TT}s)" >"$OUT/tests.log"
timeout -s INT "$TT" python3 -m pytest -q -m gpu tests/test_custom_block0.py --maxfail=5 -p no:cacheprovider \
    >>"$OUT/tests.log" 2>&1
echo "block0 tests rc=$?" >>"$OUT/tests.log"
echo "== e2e with the defaults (timeout 50s)" >>"$OUT/tests.log"
timeout -s INT 50 python3 -m pytest -q -m gpu tests/test_custom_e2e.py -p no:cacheprovider >>"$OUT/tests.log" 2>&1
echo "e2e rc=$?" >>"$OUT/tests.log"
grep -E "passed|failed|rc=" "$OUT/tests.log"
timeout -s INT "$TM" python3 scripts/custom_time.py --skip layers,add,tiles,layout,fuse,exdw,blocks,sweep \
    --fuse-batches 1,64,256 --e2e-batches 1,64,256 --e2e-specs "block0=v1;block0=v3" --json "$OUT/time.json" \
    >"$OUT/time.log" 2>&1
echo "time rc=$?" >>"$OUT/time.log"
grep -E "^block0|^e2e|rc=" "$OUT/time.log"
cat >/tmp/b0ncu.py <<'PY'
import cupy, numpy as np
from impls.custom import CustomBackend
from mbv2.model import default_network
net = default_network()
st, dw, pw = net.fused[:3]
x = cupy.asarray(np.random.default_rng(0).standard_normal((256, 3, 224, 224), dtype=np.float32))
out = cupy.empty((256, 112, 112, 16), cupy.float32)
for ver, occ2 in (("v2", False), ("v3", False), ("v3", True)):
    be = CustomBackend(kernels=f"block0={ver}")
    be.block0_occ2 = occ2
    be.stem_block(x, st.layer, dw.layer, pw.layer, out=out)
    be.synchronize()
PY
PYTHONPATH="$PWD:$PYTHONPATH" timeout -s INT "$TN" ncu --kernel-name regex:block0 --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section SchedulerStats --section ComputeWorkloadAnalysis \
    --metrics smsp__inst_executed_pipe_fma.sum,smsp__inst_executed.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum \
    python3 /tmp/b0ncu.py >"$OUT/ncu.txt" 2>&1
echo "ncu rc=$?" >>"$OUT/ncu.txt"
grep -E "block0_v|Duration|Issue Slots Busy|Compute \(SM\) Throughput|Achieved Occupancy|pipe_fma|inst_executed.sum|bank_conflicts|rc=" "$OUT/ncu.txt" | head -40
grep -E "block0_v3|registers|spill" "$OUT/build.txt" | head -12
