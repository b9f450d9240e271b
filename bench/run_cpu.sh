#!/bin/sh
# Runs the CPU benchmark with OpenBLAS free to choose its best kernel: the
# machines this was measured on set OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE,
# which force slower ones.  usage: bench/run_cpu.sh [BUILD_DIR]
set -eu
build=${1:-build}
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$build/bench/cpu_bench"
