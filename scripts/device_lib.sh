# Shared steps of the device-call scripts (session 27; sourced, not run): the start time, the seconds left before END,
# the GPU's clocks at the start, and the build cache tarball (scripts/cache_prefill.py) unpacked into $MBV2_CACHE.
# Usage (in a script): OUT=...; . "$(dirname "$0")/device_lib.sh"; device_start "$OUT"
# then `timeout $(left 300) cmd` caps a step at 300 s or the time left before END (default 560) s after the start.
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
