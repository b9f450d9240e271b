#!/bin/sh
# sustain.sh - bench/sustain.awk on a made-up nvidia-smi log and gpu_bench
# log: each sustained phase gets the samples inside it (from half a second
# after its start), and only those.
# usage: tests/bench/sustain.sh AWKFILE
set -u
awkf=$1
d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
cat >"$d/smi.csv" <<'X'
2026/12/03 10:00:00.000, 345 MHz, 80.00 W, 30, 0x0000000000000001
2026/12/03 10:00:00.700, 1500 MHz, 690.00 W, 55, 0x0000000000000004
2026/12/03 10:00:01.500, 1400 MHz, 694.00 W, 57, 0x0000000000000004
2026/12/03 10:00:02.700, 1980 MHz, 400.00 W, 50, 0x0000000000000000
2026/12/03 10:00:03.000, 345 MHz, 80.00 W, 40, 0x0000000000000001
X
cat >"$d/bench.log" <<'X'
relu 4096^3
    sustained kfuse fused        0.2100 ms a call back to back, 10 samples, from 2026/12/03 10:00:00.100 to 2026/12/03 10:00:02.000
    sustained cuBLAS             0.2000 ms a call back to back, 10 samples, from 2026/12/03 10:00:02.000 to 2026/12/03 10:00:02.900
    sustained copy               0.0100 ms a call back to back, 10 samples, from 2026/12/03 10:00:04.000 to 2026/12/03 10:00:05.000
X
got=$(awk -f "$awkf" "$d/smi.csv" "$d/bench.log") || { echo "FAIL: awk exited $?"; exit 1; }
want='relu 4096^3
    kfuse fused        0.2100 ms  SM clock mean 1450 MHz (lowest 1400)  power mean 692 W  57 C  throttle: 0x0000000000000004 x2
    cuBLAS             0.2000 ms  SM clock mean 1980 MHz (lowest 1980)  power mean 400 W  50 C  throttle: 0x0000000000000000 x1
    copy               0.0100 ms: no samples'
if [ "$got" != "$want" ]; then
    echo "FAIL: bench/sustain.awk printed"; echo "$got"; echo "expected"; echo "$want"; exit 1
fi
echo "ok sustain.awk: 3 phases"
