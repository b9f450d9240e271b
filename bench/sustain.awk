# sustain.awk - the GPU's state over each sustained phase of a gpu_bench
# log (KFUSE_BENCH_SUSTAIN): from nvidia-smi's samples (gpu_run.sh's
# smi.csv: timestamp, SM clock, power, temperature, throttle reasons),
# those from half a second after the phase's start to its end, as the mean
# and lowest SM clock, the mean power, the hottest temperature and each
# throttle-reason mask seen with its count (0x4: the software power cap).
# Times are compared within a day: a phase across midnight finds no samples.
# usage: awk -f bench/sustain.awk smi.csv bench.log
function secs(t,  a) { split(t, a, ":"); return a[1] * 3600 + a[2] * 60 + a[3] }
FNR == NR {
    split($0, f, ", ")
    if (f[2] !~ /MHz/) next
    split(f[1], d, " "); ns++
    ts[ns] = secs(d[2]); clk[ns] = f[2] + 0; pw[ns] = f[3] + 0; tp[ns] = f[4] + 0; th[ns] = f[5]
    next
}
/^[^ ]/ { graph = $0; next }
/^    sustained / {
    line = $0; sub(/^    sustained /, "", line); name = line; sub(/ +[0-9.]+ ms .*/, "", name)
    match(line, /[0-9.]+ ms a call/); ms = substr(line, RSTART, RLENGTH - 10)
    n = split(line, w, " "); t0 = secs(w[n - 3]) + 0.5; t1 = secs(w[n]) # "from DATE T0 to DATE T1"
    c = 0; cs = 0; cmin = 1e9; ps = 0; tmax = 0; delete seen; reasons = ""
    for (i = 1; i <= ns; i++) if (ts[i] >= t0 && ts[i] <= t1) {
        c++; cs += clk[i]; ps += pw[i]; if (clk[i] < cmin) cmin = clk[i]; if (tp[i] > tmax) tmax = tp[i]; seen[th[i]]++
    }
    if (graph != last) { print graph; last = graph }
    if (!c) { printf "    %-18s %s ms: no samples\n", name, ms; next }
    for (r in seen) reasons = reasons sprintf(" %s x%d", r, seen[r])
    printf "    %-18s %s ms  SM clock mean %4.0f MHz (lowest %d)  power mean %3.0f W  %d C  throttle:%s\n",
           name, ms, cs / c, cmin, ps / c, tmax, reasons
}
