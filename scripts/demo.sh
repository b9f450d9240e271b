#!/bin/sh
# Builds kfuse, then shows a fusion plan and measures the fused graph
# against the same graph unfused.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
echo "== examples/demo.kf"
cat examples/demo.kf
echo
echo "== kfuse explain examples/demo.kf"
./build/kfuse explain examples/demo.kf
echo
echo "== kfuse bench examples/demo.kf"
./build/kfuse bench examples/demo.kf
echo
echo "== the same graph through the C API (examples/api_demo.c)"
./build/examples/api_demo
