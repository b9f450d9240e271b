#!/bin/sh
# gpu_run.sh - everything the CUDA target needs a GPU for, in one go (one
# device-machine call): build, the differential suite on the GPU against the
# interpreter, the golden graphs with `kfuse run --check --device cuda` in all
# three fusion modes (with the backend a graph's "# backend:" line names),
# the rownorm backend's CUDA kernels, and the benchmark against cuBLAS.  Logs
# go to $OUT (default ./gpu-out).
# usage: bench/gpu_run.sh [all|build|diff|golden|rownorm|cfgs|bench]...
#   (CFGS="i j ..." picks the cfgs step's configurations; REPS the bench's
#   runs a median; SUSTAIN=S the bench's sustained phases, see gpu_bench.c)
set -u
OUT=${OUT:-./gpu-out}
mkdir -p "$OUT"
B=${BUILD:-/tmp/kf-gpu-build}
export KFUSE_CACHE_DIR=${KFUSE_CACHE_DIR:-/tmp/kf-gpu-cache}
steps=${*:-all}
has() { case " $steps " in *" $1 "*|*" all "*) return 0 ;; esac; return 1; }
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1 | tee "$OUT/gpu.txt"
if has build || [ ! -x "$B/kfuse" ]; then
    # without protobuf-c (a GPU machine's image), without the ONNX front end
    onnx=ON
    command -v protoc-c >/dev/null 2>&1 || onnx=OFF
    cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DKFUSE_ONNX=$onnx >"$OUT/build.log" 2>&1 &&
        cmake --build "$B" -j"$(nproc)" >>"$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 2; }
    echo "build ok"
fi
rc=0
if has golden; then
    : >"$OUT/golden.log"
    ng=0; nbad=0
    for f in tests/golden/*.kf; do
        # "# backend: NAME" loads a template backend, as tests/golden/run.sh does
        be=$(sed -n 's/^# backend: *//p' "$f")
        for m in "" --no-fusion --no-template-fusion; do
            ng=$((ng + 1))
            if timeout 120 "$B/kfuse" run "$f" --check --device cuda ${be:+--backend "$be"} $m >>"$OUT/golden.log" 2>&1; then :
            else nbad=$((nbad + 1)); echo "FAIL golden $f $m" | tee -a "$OUT/golden.log"; fi
        done
    done
    echo "golden --device cuda: $nbad of $ng runs failed"
    [ $nbad -eq 0 ] || rc=1
fi
if has rownorm; then
    # the rownorm backend on the GPU: every kernel shape (a warp per row, a
    # block per row, a block re-reading rows too long for registers) with
    # prologues and epilogues, against the interpreter: the differential
    # suite's rownorm case, and graphs through `kfuse run --check`
    d="$OUT/kf"; mkdir -p "$d"
    printf 'input x : f16[64, 4096]\ninput r : f16[64, 4096]\ninput w : f16[4096]\ninput b : f16[4096]\ny, mean, rstd = layer_norm(add(x, r), w, b, axis=-1)\nz = cast(y, dtype=f32)\noutput z, mean, rstd\n' >"$d/rn1.kf"
    printf 'input x : f32[3, 50000]\ny = mul(softmax(mul(x, 4.0), axis=-1), 2.0)\noutput y\n' >"$d/rn2.kf"
    printf 'input x : bf16[1000, 77]\ninput w : bf16[77]\ny = rms_norm(x, w, axis=-1)\noutput y\n' >"$d/rn3.kf"
    printf 'input x : f64[6, 5, 300]\ninput w : f64[5, 300]\ny, mean, rstd = layer_norm(x, w, axis=1)\noutput y, rstd\n' >"$d/rn4.kf"
    : >"$OUT/rownorm.log"; nr=0; nbad=0
    for f in "$d"/rn*.kf; do
        for m in "" --no-fusion; do
            nr=$((nr + 1))
            if timeout 120 "$B/kfuse" run "$f" --check --device cuda --backend rownorm $m >>"$OUT/rownorm.log" 2>&1; then :
            else nbad=$((nbad + 1)); echo "FAIL rownorm $f $m" | tee -a "$OUT/rownorm.log"; fi
        done
    done
    nr=$((nr + 1))
    KFUSE_TEST_DEVICE=cuda timeout 300 "$B/tests/test_diff" composite.rownorm >>"$OUT/rownorm.log" 2>&1 ||
        { nbad=$((nbad + 1)); grep -E "^FAIL" "$OUT/rownorm.log" | head -20; }
    echo "rownorm --device cuda: $nbad of $nr runs failed"
    [ $nbad -eq 0 ] || rc=1
fi
if has cfgs; then
    # every tile configuration (KFUSE_CUDA_MM_CFG) on awkward sizes: M, N, K
    # off the tile, K % 8 != 0, prologues on either operand, batched and
    # broadcast batch, f16 and bf16; `kfuse run --check` against the interpreter
    d="$OUT/kf"; mkdir -p "$d"
    printf 'input a : f16[257, 1000]\ninput b : f16[1000, 264]\ninput bias : f16[264]\ny = relu(add(matmul(a, b), bias))\noutput y\n' >"$d/t1.kf"
    printf 'input a : f16[130, 1001]\ninput wq : i8[1001, 300]\ninput scale : f16[300]\ny = matmul(a, mul(cast(wq, dtype=f16), scale))\noutput y\n' >"$d/t2.kf"
    printf 'input a : bf16[3, 100, 520]\ninput b : bf16[520, 72]\ninput c : bf16[72]\ny = add(matmul(relu(a), b), c)\noutput y\n' >"$d/t3.kf"
    printf 'input x : f32[200, 512]\ninput b : f16[2, 512, 136]\ny = matmul(cast(relu(x), dtype=f16), b)\noutput y\n' >"$d/t4.kf"
    printf 'input a : f16[520, 264]\ninput wq : i8[264, 520]\ninput scale : f16[520]\ny = matmul(a, mul(cast(wq, dtype=f16), scale))\noutput y\n' >"$d/t5.kf"
    printf 'input a : bf16[2, 130, 136]\ninput b : bf16[136, 200]\ny = gelu(matmul(a, b))\noutput y\n' >"$d/t6.kf"
    printf 'input a : f16[3, 70, 64]\ninput b : f16[3, 64, 264]\ninput r : f16[3, 70, 264]\ny = add(matmul(a, b), r)\noutput y\n' >"$d/t7.kf"
    # the 8-wide epilogue: two stored outputs, f32 output, an [M, 1] bias and a
    # transposed residual (scalar loads), N % 32 != 0 (ragged 8-column groups)
    printf 'input a : f16[130, 72]\ninput b : f16[72, 264]\ninput bias : f16[264]\ninput r : f16[130, 264]\ny = gelu(add(matmul(a, b), bias))\nz = add(y, r)\noutput y\noutput z\n' >"$d/t8.kf"
    printf 'input a : f16[2, 70, 96]\ninput b : f16[96, 136]\ninput bias : f16[136]\ny = cast(silu(add(matmul(a, b), bias)), dtype=f32)\noutput y\n' >"$d/t9.kf"
    printf 'input a : f16[300, 256]\ninput b : f16[256, 512]\ninput bias : f16[300, 1]\ninput r : f16[512, 300]\ny = add(add(matmul(a, b), bias), transpose(r, perm=[1, 0]))\noutput y\n' >"$d/t10.kf"
    printf 'input a : bf16[3, 100, 520]\ninput b : bf16[520, 72]\ninput c : bf16[72]\ninput r : bf16[3, 100, 72]\ny = add(relu(add(matmul(a, b), c)), r)\noutput y\n' >"$d/t11.kf"
    # more tiles than multiprocessors (the persistent kernels loop), batched
    printf 'input a : f16[3, 600, 136]\ninput b : f16[3, 136, 2100]\ninput bias : f16[2100]\ny = relu(add(matmul(a, b), bias))\noutput y\n' >"$d/t12.kf"
    # many tiles a block, one k tile each: fewer k tiles than stages
    printf 'input a : f16[4000, 64]\ninput b : f16[64, 1024]\ninput bias : f16[1024]\ny = relu(add(matmul(a, b), bias))\noutput y\n' >"$d/t13.kf"
    # raw staging (the prologue's source by TMA): an int8 weight off every
    # tile edge, and both operands' prologues with a broadcast batch
    printf 'input a : f16[130, 1000]\ninput wq : i8[1000, 272]\ninput scale : f16[272]\ny = matmul(a, mul(cast(wq, dtype=f16), scale))\noutput y\n' >"$d/t14.kf"
    printf 'input a : f16[3, 100, 264]\ninput wq : i8[264, 400]\ninput s : f16[400]\ny = matmul(relu(a), mul(cast(wq, dtype=f16), s))\noutput y\n' >"$d/t15.kf"
    # K of 256, N within one tile, many tiles a block, M off the tile, f32 out
    printf 'input a : f16[5000, 256]\ninput b : f16[256, 200]\ninput bias : f16[200]\ny = cast(silu(add(matmul(a, b), bias)), dtype=f32)\noutput y\n' >"$d/t16.kf"
    # streaming (B resident): K of 72 (two k tiles), M and N off the tile,
    # a residual; three k tiles, N of one whole tile; many tiles a block, so
    # that every slot of the ring is refilled several times
    printf 'input a : bf16[1000, 72]\ninput b : bf16[72, 128]\ninput r : bf16[1000, 128]\ny = add(gelu(matmul(a, b)), r)\noutput y\n' >"$d/t17.kf"
    printf 'input a : f16[130, 136]\ninput b : f16[136, 256]\ninput bias : f16[256]\ny = sigmoid(add(matmul(a, b), bias))\noutput y\n' >"$d/t18.kf"
    printf 'input a : f16[70000, 200]\ninput b : f16[200, 72]\ninput bias : f16[72]\ny = relu(add(matmul(a, b), bias))\noutput y\n' >"$d/t19.kf"
    # the transposed kernel (an 8-bit weight from registers): a residual
    # (four rows a call), M, N and K off the tile, many tiles a block; a scale
    # a row of the weight; an unsigned weight with a zero point
    printf 'input a : f16[600, 520]\ninput wq : i8[520, 400]\ninput scale : f16[400]\ninput r : f16[600, 400]\ny = add(relu(matmul(a, mul(cast(wq, dtype=f16), scale))), r)\noutput y\n' >"$d/t20.kf"
    printf 'input a : f16[300, 264]\ninput wq : i8[264, 256]\ninput s : f16[264, 1]\ninput bias : f16[256]\ny = add(matmul(a, mul(cast(wq, dtype=f16), s)), bias)\noutput y\n' >"$d/t21.kf"
    printf 'input a : f16[4200, 136]\ninput wq : u8[136, 1280]\ninput zp : f16[1280]\ninput s : f16[1280]\ny = matmul(a, mul(sub(cast(wq, dtype=f16), zp), s))\noutput y\n' >"$d/t22.kf"
    : >"$OUT/cfgs.log"; nc=0; nbad=0
    for i in ${CFGS:-0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26}; do
        for f in "$d"/t*.kf; do
            nc=$((nc + 1))
            if KFUSE_CUDA_MM_CFG=$i timeout 25 "$B/kfuse" run "$f" --check --device cuda >>"$OUT/cfgs.log" 2>&1; then :
            else nbad=$((nbad + 1)); echo "FAIL cfg $i $f" | tee -a "$OUT/cfgs.log"; fi
        done
    done
    echo "tile configurations --device cuda: $nbad of $nc runs failed"
    [ $nbad -eq 0 ] || rc=1
fi
if has diff; then
    KFUSE_TEST_DEVICE=cuda timeout 420 "$B/tests/test_diff" >"$OUT/diff.log" 2>&1
    d=$?
    grep -E "^FAIL" "$OUT/diff.log" | head -40
    tail -1 "$OUT/diff.log"
    echo "test_diff --device cuda: exit $d"
    [ $d -eq 0 ] || rc=1
fi
if has bench; then
    # SUSTAIN=S: each timed thing also alone for S seconds, with the GPU's
    # power, clock and throttle reasons logged every 25 ms to smi.csv and
    # summed up a phase each in sustain.txt
    smi=
    if [ -n "${SUSTAIN:-}" ]; then
        nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,temperature.gpu,clocks_throttle_reasons.active \
            --format=csv,noheader -lms 25 >"$OUT/smi.csv" 2>&1 &
        smi=$!
    fi
    KFUSE_BENCH_SUSTAIN=${SUSTAIN:-} timeout 560 "$B/bench/gpu_bench" ${REPS:-50} >"$OUT/bench.log" 2>&1
    b=$?
    [ -z "$smi" ] || kill "$smi"
    cat "$OUT/bench.log"
    if [ -n "$smi" ]; then
        echo "the GPU over each sustained phase (bench/sustain.awk):"
        awk -f bench/sustain.awk "$OUT/smi.csv" "$OUT/bench.log" | tee "$OUT/sustain.txt"
    fi
    echo "gpu_bench: exit $b"
    "$B/kfuse" bench tests/golden/relu_mm_bias.kf --device cuda --repeat 5 --warmup 2 >"$OUT/cli_bench.log" 2>&1 ||
        { echo "kfuse bench --device cuda failed"; cat "$OUT/cli_bench.log"; rc=1; }
fi
exit $rc
