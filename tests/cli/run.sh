#!/bin/sh
# run.sh KFUSE_BIN [noonnx] - run, explain, emit and bench on a small graph:
# the output line format, seeded inputs, --check, --data (TensorProto files
# written here byte by byte) with a match and a mismatch, and the exit
# statuses.  noonnx: kfuse was built without the ONNX front end, so --data
# must fail with exit 2, saying so.
set -u
KFUSE=${1:?usage: run.sh KFUSE_BIN [noonnx]}
ONNX=${2:-onnx}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kfuse-run.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; sed 's/^/     /' "$TMP/out" "$TMP/err" | head -n 8; }

# k NAME STATUS ARGS...: runs kfuse ARGS, wants STATUS; output in $TMP/out, err
k() {
    name=$1 want=$2
    shift 2
    "$KFUSE" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    [ "$rc" -eq "$want" ] || { bad "$name: exit status $rc, want $want"; return 1; }
    return 0
}
has() { grep -qE -- "$1" "$TMP/out"; }

printf 'input a : f32[2, 3]\ninput b : f32[3]\ny = relu(add(a, b))\ns = sum(y, axis=1)\noutput y, s\n' >"$TMP/g.kf"

if k "run" 0 run "$TMP/g.kf"; then
    if has '^y f32\[2,3\] sum=[^ ]+ min=[^ ]+ max=[^ ]+ first=\[[^ ]+ [^ ]+ [^ ]+ [^ ]+ \.\.\.\]$' &&
       has '^s f32\[2\] sum=[^ ]+ min=[^ ]+ max=[^ ]+ first=\[[^ ]+ [^ ]+\]$' &&
       [ "$(wc -l <"$TMP/out")" -eq 2 ]; then ok "run: output lines"; else bad "run: output lines"; fi
    cp "$TMP/out" "$TMP/seed0"
fi
k "run --seed 0" 0 run "$TMP/g.kf" --seed 0 && { cmp -s "$TMP/out" "$TMP/seed0" && ok "run: seed 0 is the default" || bad "run: seed 0 differs from the default"; }
k "run --seed 5" 0 run "$TMP/g.kf" --seed 5 && { cmp -s "$TMP/out" "$TMP/seed0" && bad "run: --seed 5 gives seed 0's data" || ok "run: --seed changes the data"; }
k "run --check" 0 run "$TMP/g.kf" --check && { has '^check: y ok \(max abs err' && has '^check: s ok' && ok "run --check" || bad "run --check: no 'check: NAME ok' lines"; }
k "run --check --no-fusion" 0 run "$TMP/g.kf" --check --no-fusion && ok "run --check --no-fusion"

# TensorProto: dims (field 1), data_type FLOAT (field 2), raw_data (field 9)
# a = [1, -2, 3], y = relu(a) = [1, 0, 3]
printf 'input a : f32[3]\ny = relu(a)\noutput y\n' >"$TMP/r.kf"
mkdir "$TMP/good" "$TMP/bad"
printf '\010\003\020\001\112\014\000\000\200\077\000\000\000\300\000\000\100\100' >"$TMP/good/input_0.pb"
cp "$TMP/good/input_0.pb" "$TMP/bad/input_0.pb"
printf '\010\003\020\001\112\014\000\000\200\077\000\000\000\000\000\000\100\100' >"$TMP/good/output_0.pb"
printf '\010\003\020\001\112\014\000\000\200\077\000\000\000\077\000\000\100\100' >"$TMP/bad/output_0.pb"
if [ "$ONNX" = noonnx ]; then
    k "run --data without the ONNX front end" 2 run "$TMP/r.kf" --data "$TMP/good" &&
        { [ ! -s "$TMP/out" ] && grep -qF "input_0.pb: error: this kfuse was built without the ONNX front end" "$TMP/err" &&
          ok "run --data: no ONNX front end, exit 2" || bad "run --data: no ONNX front end"; }
else
k "run --data good" 0 run "$TMP/r.kf" --data "$TMP/good" &&
    { has '^y f32\[3\] sum=4 min=0 max=3 first=\[1 0 3\]$' && has '^data: y ok' && ok "run --data: a match" || bad "run --data: a match"; }
k "run --data bad" 1 run "$TMP/r.kf" --data "$TMP/bad" &&
    { has '^data: y MISMATCH at flat index 1: got 0, want 0.5' && ok "run --data: a mismatch exits 1" || bad "run --data: the mismatch report"; }
printf 'input a : f32[4]\ny = relu(a)\noutput y\n' >"$TMP/r4.kf"
k "run --data, wrong shape" 2 run "$TMP/r4.kf" --data "$TMP/good" &&
    { [ ! -s "$TMP/out" ] && grep -qF "input_0.pb: error: input 'a' is f32[4]" "$TMP/err" && ok "run --data: a wrong input shape exits 2" || bad "run --data: wrong input shape"; }
fi

k "explain" 0 explain "$TMP/g.kf" && { [ -s "$TMP/out" ] && ok "explain" || bad "explain: no output"; }
k "explain --json" 0 explain "$TMP/g.kf" --json && { has '"kernels"' && ok "explain --json" || bad "explain --json: no kernels"; }
k "emit" 0 emit "$TMP/g.kf" && { [ -s "$TMP/out" ] && ok "emit" || bad "emit: no output"; }
k "bench" 0 bench "$TMP/g.kf" --repeat 2 --warmup 1 &&
    { has '^fused +[0-9]+ kernels? +min +[0-9.]+ ms +median +[0-9.]+ ms +1\.00x$' &&
      has '^no-template-fusion +[0-9]+ kernel' && has '^no-fusion +[0-9]+ kernel' && has '^interpreter ' &&
      ok "bench" || bad "bench: the report"; }

# CUDA may be absent: then exit 2 with nothing on stdout
"$KFUSE" run "$TMP/g.kf" --device cuda >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ "$rc" -eq 0 ] || { [ "$rc" -eq 2 ] && [ ! -s "$TMP/out" ] && [ -s "$TMP/err" ]; }; then
    ok "run --device cuda (status $rc)"
else
    bad "run --device cuda: status $rc"
fi

echo "run: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
