#!/bin/bash
# Session 40 (results/NOTES.md "Session 40"), call 4: MBV2_L2_PERSIST=head (the batch-1 head's weight arrays kept in
# the L2 by access-policy windows) in ONE device call, on the committed picks:
#   1. the A/B at batch 1: fuse v47 (the default) in 6 processes, MBV2_L2_PERSIST unset / head alternating, 2
#      instances each (ab.log, ab.json; every instance's logits checked against ONNX Runtime first, poisoned buffers);
#   2. Nsight Compute without cache flushes on one warm replay of the graph with MBV2_L2_PERSIST=head, the graph as
#      one result and per node (graph_head.csv, node_head.csv): the DRAM bytes that call 3 measured without it;
#   3. the prefix times with it (prefix.tgz), while time is left.
# Usage: scripts/l2persist_device.sh OUT   env: KCACHE, END (default 300)
OUT=${1:?usage: $0 OUT}
export END=${END:-300}
. "$(dirname "$0")/device_lib.sh"
bs1_start "$OUT" || exit 1
python3 -c "import cupy; cupy.cuda.runtime.deviceSetLimit; print('persistingL2CacheMaxSize',
  cupy.cuda.runtime.getDeviceProperties(0)['persistingL2CacheMaxSize'])" || exit 1
s="fuse=v47,picks=$P"
ab_arms MBV2_L2_PERSIST "- head - head - head" "$s;$s"
find_ncu || exit 1
MBV2_L2_PERSIST=head ncu_l2 _head
mkdir -p /tmp/prefix
[ "$(left 60)" -ge 30 ] && MBV2_L2_PERSIST=head timeout "$(left 60)" python3 scripts/plan_prefix_times.py --batch 1 \
  --kernels fuse=v47 --picks "$P" --rounds 3 --json /tmp/prefix/prefix_head.json > /tmp/prefix/prefix_head.log 2>&1 &&
  tail -4 /tmp/prefix/prefix_head.log && tar -czf "$OUT/prefix.tgz" -C /tmp prefix
