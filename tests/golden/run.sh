#!/bin/sh
# Golden fusion-plan test: runs `kfuse explain --json` on one .kf file and
# checks the kernel count its "# kernels: N" line expects (and, where given,
# the "# epilogue: a b" / "# prologue: a b" node names of the template
# kernel), then `kfuse run --check` against the reference interpreter.
# usage: run.sh KFUSE FILE.kf
set -u
kfuse=$1
f=$2
want=$(sed -n 's/^# kernels: *//p' "$f")
# "# backend: NAME" loads a template backend for this graph
be=$(sed -n 's/^# backend: *//p' "$f")
if [ -n "$be" ]; then
    run_kfuse() { "$kfuse" "$@" --backend "$be"; }
else
    run_kfuse() { "$kfuse" "$@"; }
fi
[ -n "$want" ] || { echo "FAIL $f: no '# kernels:' line"; exit 1; }
json=$(run_kfuse explain "$f" --json) || { echo "FAIL $f: explain exited $?"; exit 1; }
got=$(printf '%s\n' "$json" | grep -o '"name": "k[0-9]*"' | wc -l)
if [ "$got" -ne "$want" ]; then
    echo "FAIL $f: $got kernels, expected $want"
    printf '%s\n' "$json"
    exit 1
fi
for role in prologue epilogue; do
    names=$(sed -n "s/^# $role: *//p" "$f")
    [ -n "$names" ] || continue
    list=$(printf '%s\n' "$json" | grep -o "\"$role\": \[[^]]*\]" | head -1)
    for n in $names; do
        case "$list" in
        *"\"$n\""*) ;;
        *) echo "FAIL $f: $role lacks $n: $list"; exit 1 ;;
        esac
    done
done
out=$(run_kfuse run "$f" --check 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
    echo "FAIL $f: run --check exited $rc"
    printf '%s\n' "$out"
    exit 1
fi
for nf in --no-fusion --no-template-fusion; do
    o2=$(run_kfuse run "$f" --check $nf 2>&1) || { echo "FAIL $f: run --check $nf"; printf '%s\n' "$o2"; exit 1; }
done
echo "ok $f: $got kernels"
