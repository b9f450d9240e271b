#!/bin/sh
# Runs every test: a release build, an ASan+UBSan build and a release build
# without the ONNX front end (KFUSE_ONNX=OFF), each with -Werror, each through
# ctest.  Prints a closing "tests: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh || exit 1
jobs=$(nproc 2>/dev/null || echo 2)
export KFUSE_CACHE_DIR="${KFUSE_CACHE_DIR:-$PWD/build-test-cache}"
pass=0
fail=0
run_suite() {
    dir=$1
    shift
    cmake -S . -B "$dir" -DKFUSE_WERROR=ON "$@" >/dev/null || { fail=$((fail + 1)); return; }
    cmake --build "$dir" -j"$jobs" >/dev/null || { echo "build failed in $dir"; cmake --build "$dir" 2>&1 | tail -30; fail=$((fail + 1)); return; }
    (cd "$dir" && ctest -j"$jobs" --output-on-failure) | tee "$dir/ctest.log"
    p=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "$dir/ctest.log" | tail -1)
    if [ -z "$p" ]; then fail=$((fail + 1)); return; fi
    set -- $p
    pass=$((pass + $1 - $2))
    fail=$((fail + $2))
}
run_suite build-release -DCMAKE_BUILD_TYPE=Release
ASAN_OPTIONS=detect_leaks=1 run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DKFUSE_SANITIZE=ON
run_suite build-noonnx -DCMAKE_BUILD_TYPE=Release -DKFUSE_ONNX=OFF
echo "tests: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
