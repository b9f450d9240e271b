#!/bin/sh
# Builds and runs bench/mm_standalone.c (the CPU GEMM template against
# OpenBLAS). Uses OpenBLAS's OpenMP build when Debian's is installed, so both
# sides share one thread pool, and unsets the variables that force slower
# OpenBLAS kernels. Usage: bench/mm_standalone.sh [reps [shape]]
set -e
cd "$(dirname "$0")/.."
out=${TMPDIR:-/tmp}/kf_mm_standalone
cc -O3 -march=native -fopenmp -Wall -Wextra bench/mm_standalone.c -o "$out" -lopenblas -lm
omp=/usr/lib/x86_64-linux-gnu/openblas-openmp
[ -d "$omp" ] && export LD_LIBRARY_PATH="$omp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$out" "$@"
