#!/bin/sh
# usage.sh KFUSE_BIN - the command line itself: bad commands, options and
# files exit with status 2, a "kfuse: error: ..." message and nothing on
# stdout; --help and --version exit 0.
set -u
KFUSE=${1:?usage: usage.sh KFUSE_BIN}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kfuse-usage.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
printf 'input a : f32[2, 3]\ny = relu(a)\noutput y\n' >"$TMP/ok.kf"
OK=$TMP/ok.kf

# expect STATUS SUBSTRING HINT -- ARGS...: runs kfuse ARGS; SUBSTRING must be
# on stderr (exit 2) or stdout (exit 0); HINT=1: stderr also points to --help.
expect() {
    want=$1 sub=$2 hint=$3
    shift 4
    "$KFUSE" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    why=""
    if [ "$rc" -ne "$want" ]; then
        why="exit status $rc, want $want"
    elif [ "$want" -eq 0 ]; then
        grep -qF -- "$sub" "$TMP/out" || why="stdout does not contain '$sub'"
        [ -s "$TMP/err" ] && why="stderr is not empty"
    else
        [ -s "$TMP/out" ] && why="stdout is not empty"
        grep -qF -- "$sub" "$TMP/err" || why="stderr does not contain '$sub'"
        if [ "$hint" = 1 ]; then
            head -n 1 "$TMP/err" | grep -q '^kfuse: error: ' || why="stderr does not start with 'kfuse: error: '"
            grep -qF -- "kfuse --help" "$TMP/err" || why="no hint to --help"
        fi
    fi
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        echo "ok   kfuse $*"
    else
        fail=$((fail + 1))
        echo "FAIL kfuse $*: $why"
        sed 's/^/     /' "$TMP/err" | head -n 3
    fi
}

expect 2 "missing command" 1 --
expect 2 "unknown command 'frobnicate'" 1 -- frobnicate "$OK"
expect 2 "expected a command" 1 -- --no-fusion explain "$OK"
expect 2 "unknown option '--frobnicate'" 1 -- explain "$OK" --frobnicate
expect 2 "unknown option '-x'" 1 -- run -x "$OK"
expect 2 "missing FILE" 1 -- explain
expect 2 "missing FILE" 1 -- run --seed 3
expect 2 "unexpected argument" 1 -- emit "$OK" "$OK"
expect 2 "unknown device 'bogus'" 1 -- run "$OK" --device bogus
expect 2 "unknown device 'gpu'" 1 -- bench "$OK" --device=gpu
expect 2 "option --device needs a value" 1 -- explain "$OK" --device
expect 2 "option --check does not apply to 'explain'" 1 -- explain "$OK" --check
expect 2 "option --json does not apply to 'run'" 1 -- run "$OK" --json
expect 2 "option --data does not apply to 'bench'" 1 -- bench "$OK" --data "$TMP"
expect 2 "option --no-fusion does not apply to 'bench'" 1 -- bench "$OK" --no-fusion
expect 2 "--seed expects a non-negative integer" 1 -- run "$OK" --seed -1
expect 2 "--seed expects a non-negative integer" 1 -- run "$OK" --seed 12x
expect 2 "--repeat expects a positive integer" 1 -- bench "$OK" --repeat 0
expect 2 "--warmup expects a non-negative integer" 1 -- bench "$OK" --warmup=many
expect 2 "option --no-fusion takes no value" 1 -- emit "$OK" --no-fusion=1
expect 2 "--shape expects NAME=d0,d1,..." 1 -- run "$OK" --shape a:2,3
expect 2 "./libfoo.so: error: cannot load the backend" 0 -- explain "$OK" --backend ./libfoo.so
expect 2 "bogus: error: no compiled-in backend of that name" 0 -- explain "$OK" --backend bogus
expect 2 "$TMP/missing.kf: error: cannot read: No such file or directory" 0 -- explain "$TMP/missing.kf"
expect 2 "$TMP: error: cannot read: " 0 -- emit "$TMP"
expect 2 "$OK: error: shape bindings" 0 -- run "$OK" --shape a=2,3
expect 0 "usage: kfuse COMMAND FILE" 0 -- --help
expect 0 "usage: kfuse COMMAND FILE" 0 -- -h
expect 0 "--no-template-fusion" 0 -- run "$OK" --help
expect 0 "kfuse " 0 -- --version

echo "usage: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
