# Shared steps of the device-call scripts (session 27; sourced, not run): the start time, the seconds left before END,
# the GPU's clocks at the start, and the build cache tarball (scripts/cache_prefill.py) unpacked into $MBV2_CACHE.
# Usage (in a script): OUT=...; . "$(dirname "$0")/device_lib.sh"; device_start "$OUT"
# then `timeout $(left 300) cmd` caps a step at 300 s or the time left before END (default 560) s after the start,
# and `ab_step SPECS T N [PATTERN]` runs the interleaved batch-1 fp32 A/B of SPECS (scripts/e2e_ab.py, 5 rounds) into
# $OUT/ab.json / ab.log, capped at ${AB_T:-T} s, and prints the last N log lines matching PATTERN (default: the
# per-round and summary lines and errors). `ab_arms VAR "ARMS" SPECS` runs that A/B once per arm, each in its own
# process with VAR=arm ("-": unset; for the process-wide options MBV2_CARVEOUT, MBV2_PDL_TRIGGER), into $OUT/ab.log
# and $OUT/ab.json (scripts/ab_merge.py), and prints each process's instances and each arm's median.
# `bs1_picks FILE` writes the committed run's batch-1 autotuner picks (`python -m mbv2 picks`; the H100's run on an
# H100, else the H200's) to FILE, or prints why not and fails. `bs1_start OUT` is device_start, then those picks into
# $P and session 33's four batch-1 specs on them into $SPECS4 (v42, v45, v46, v46 trig=: scripts/trigger_device.sh,
# combo_device.sh). `staged_ab` (after bs1_start): scripts/staged_device.sh / staged_bench_device.sh's A/B and
# decision (AB_VERSIONS: the fuse versions it times, default v46 v47 v48). `prefix_times VERSION..` (after bs1_start):
# each version's batch-1 prefix times on those picks into $OUT/prefix.tgz while time is left.
# `find_ncu` (session 40): Nsight Compute's path into $NCU, its version printed, or a failure. `ncu_l2 [SUFFIX]`
# (session 40, after bs1_start and find_ncu): ncu without cache flushes on one warm replay of the default plan's graph
# on $P (scripts/ncu_kernels.py --graph), the graph as one result and per node, into $OUT/graph$SUFFIX.csv and
# $OUT/node$SUFFIX.csv (DRAM bytes, L2 hit rate), each capped at 100 s or the time left; the caller's environment
# (e.g. MBV2_L2_PERSIST) reaches the profiled process.
# `gpu_tests FILES EXPR [CAP]` (session 42, after bs1_start): pytest -m gpu over FILES with -k EXPR on those picks into
# $OUT/tests.log; its summary and failures printed, pytest's rc returned.
export PYTHONUNBUFFERED=1
t0=$(date +%s)
left() { local l=$(( ${END:-560} - ($(date +%s) - t0) )); [ "$l" -lt "$1" ] && echo "$l" || echo "$1"; }
device_start() {
  nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader | tee "$1/smi.txt"
  if [ -n "$KCACHE" ]; then
    mkdir -p "${MBV2_CACHE:?set MBV2_CACHE}" && tar -xf "$KCACHE" -C "$MBV2_CACHE" &&
      echo "[cache: $(ls "$MBV2_CACHE/kernels" | wc -l) builds from $KCACHE]"
  fi
}
ab_step() {
  timeout $(left ${AB_T:-$2}) python3 scripts/e2e_ab.py --dtype fp32 --batches 1 --rounds 5 --json "$OUT/ab.json" \
    --specs "$1" > "$OUT/ab.log" 2>&1
  echo "[ab rc=$? $(( $(date +%s) - t0 ))s]"
  grep -E "${4:-^\[bs|^ab |Error|error}" "$OUT/ab.log" | sed -E 's/ new kernels.*//' | tail -"$3"
}
ab_arms() {
  local var=$1 arms=$2 specs=$3 i=0 arm pairs=()
  : > "$OUT/ab.log"
  for arm in $arms; do
    i=$((i + 1))
    echo "== process $i $var=$arm" >> "$OUT/ab.log"
    rm -f "/tmp/ab_$i.json"
    env "$var=$([ "$arm" = "-" ] || echo "$arm")" timeout "$(left 120)" python3 scripts/e2e_ab.py --dtype fp32 \
      --batches 1 --rounds 5 --json "/tmp/ab_$i.json" --specs "$specs" >> "$OUT/ab.log" 2>&1
    echo "[ab $i $var=$arm rc=$? $(( $(date +%s) - t0 ))s] $(grep '^ab ' "$OUT/ab.log" | tail -3 | awk '{print $7}' | xargs)"
    pairs+=("$arm=/tmp/ab_$i.json")
  done
  python3 scripts/ab_merge.py "$OUT/ab.json" "${pairs[@]}"
}
bs1_picks() {
  local run=results/h200/run.json  # on an H100 its own committed run (results/h100/run.json)
  nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H100 && run=results/h100/run.json
  echo "[picks from $run]"
  python3 -m mbv2 picks "$run" --bench "test_e2e[custom-fp32-graph-bs1]" --out "$1" > /tmp/picks.log 2>&1 ||
    { cat /tmp/picks.log; return 1; }
}
staged_ab() {  # session 37: v46 / v47 (the default) / v48 on the committed picks, 3 processes x 2 instances each;
  # scripts/decide_bs1.py with base v47 into $OUT/decide.txt (its last line: the bench's environment or "none").
  # Session 38: AB_VERSIONS (default "v46 v47 v48") names the versions timed. Session 43: the base is AB_BASE, else
  # the code's default fuse version where AB_VERSIONS holds it (v51 since session 43), else v47 (the scripts written
  # while v47 was the default)
  local s="" v base=$AB_BASE
  for v in ${AB_VERSIONS:-v46 v47 v48}; do s="$s${s:+;}fuse=$v,picks=$P"; done
  if [ -z "$base" ]; then
    base=$(python3 -c 'from impls._custom_kernels import DEFAULT_VERSIONS as D; print(D["fuse"])')
    case " ${AB_VERSIONS:-v46 v47 v48} " in *" $base "*) ;; *) base=v47 ;; esac
  fi
  echo "[decide: base $base]"
  ab_arms MBV2_STAGE "- - -" "$s;$s"
  python3 scripts/decide_bs1.py "$OUT/ab.json" "$base" | tee "$OUT/decide.txt"
}
bs1_start() {
  device_start "$1"
  P=/tmp/picks_v42_bs1.json
  bs1_picks "$P" || return 1
  SPECS4="fuse=v42,picks=$P;fuse=v45,picks=$P;fuse=v46,picks=$P;fuse=v46,picks=$P,trig="
}
prefix_times() {  # session 38: the batch-1 prefix times of each fuse version named (on $P) into $OUT/prefix.tgz, while
  # 30 s or more are left (scripts/plan_prefix_times.py, 3 rounds, at most 60 s each)
  local v
  mkdir -p /tmp/prefix
  find /tmp/prefix -type f ! -newermt "@$t0" -delete  # (session 43: a reused machine's /tmp held older calls' files)
  for v in "$@"; do
    [ "$(left 60)" -lt 30 ] && { echo "[prefix $v skipped: no time left]"; continue; }
    timeout "$(left 60)" python3 scripts/plan_prefix_times.py --batch 1 --kernels fuse=$v --picks "$P" --rounds 3 \
      --json "/tmp/prefix/prefix_$v.json" > "/tmp/prefix/prefix_$v.log" 2>&1
    echo "[prefix $v rc=$? $(( $(date +%s) - t0 ))s] $(tail -1 "/tmp/prefix/prefix_$v.log")"
    tar -czf "$OUT/prefix.tgz" -C /tmp prefix
  done
}
gpu_tests() {  # session 42: `pytest -m gpu` over the files $1 with -k "$2" on the committed picks ($P, after bs1_start)
  # into $OUT/tests.log, capped at ${3:-150} s or the time left; prints the summary and failures, returns pytest's rc
  MBV2_TUNE_PICKS="$P" timeout "$(left "${3:-150}")" python3 -m pytest -q -m gpu -p no:cacheprovider -rfEs $1 -k "$2" \
    > "$OUT/tests.log" 2>&1
  local rc=$?
  echo "[tests rc=$rc $(( $(date +%s) - t0 ))s] $(tail -1 "$OUT/tests.log")"
  grep -E "^(FAILED|ERROR)|Error" "$OUT/tests.log" | cut -c1-300 | head -10
  return $rc
}
find_ncu() {  # session 40: the ncu on PATH or under /usr/local/cuda*, into $NCU (its version printed), or fail
  NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  [ -n "$NCU" ] || { echo "ncu not found"; return 1; }
  "$NCU" --version | tail -1
}
ncu_metrics() {  # session 41: of the metrics named, those this GPU's ncu knows, comma-separated (the others reported)
  "$NCU" --query-metrics --chip gh100 > /tmp/metrics.txt 2>&1
  local m out=""
  for m in "$@"; do
    grep -q "^${m%%.*} " /tmp/metrics.txt && out="$out${out:+,}$m" || echo "[metric not on this chip: $m]" >&2
  done
  echo "$out"
}
ncu_l2() {
  local mode m="gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sector_hit_rate.pct"
  for mode in graph node; do
    [ "$(left 100)" -lt 30 ] && { echo "[ncu $mode skipped: no time left]"; continue; }
    MBV2_TUNE_PICKS="$P" timeout "$(left 100)" "$NCU" --clock-control none --cache-control none \
      --graph-profiling $mode --profile-from-start off --csv --page raw --metrics "$m,lts__t_bytes.sum" \
      python3 scripts/ncu_kernels.py --backend custom --dtype fp32 --batch 1 --graph > "$OUT/$mode${1:-}.csv" \
      2> "/tmp/ncu_$mode.err"
    echo "[ncu $mode rc=$? $(( $(date +%s) - t0 ))s]"
    grep -v "^==PROF==" "/tmp/ncu_$mode.err" | tail -3
  done
}
