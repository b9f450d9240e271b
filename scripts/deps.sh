#!/bin/sh
# Installs, from Debian's packages, what building and testing kfuse needs and
# this machine lacks: a C compiler, CMake, protobuf-c with ONNX's schema and
# backend-test data (the ONNX front end), and OpenBLAS (the CPU benchmark's
# baseline only).
set -eu
pkgs="gcc cmake make libc6-dev protobuf-c-compiler libprotobuf-c-dev libonnx-dev libonnx-testdata libopenblas-dev libopenblas0-openmp"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
