#!/bin/sh
# errors.sh KFUSE_BIN DIR - runs `kfuse explain` on every DIR/*.kf, each a bad
# input whose first line is "# expect: LINE:COL: SUBSTRING", and on a few bad
# inputs made here (an empty file, NUL bytes, binary garbage, a huge line).
# Each must exit with status 2, print nothing on stdout, and print on stderr
# "FILE:LINE:COL: error: ..." with the expected place and text.
set -u
KFUSE=${1:?usage: errors.sh KFUSE_BIN DIR}
DIR=${2:?usage: errors.sh KFUSE_BIN DIR}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kfuse-errors.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

# check FILE LINE:COL SUBSTRING
check() {
    file=$1 place=$2 sub=$3
    "$KFUSE" explain "$file" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    first=$(head -n 1 "$TMP/err")
    why=""
    if [ "$rc" -ne 2 ]; then
        why="exit status $rc, want 2"
    elif [ -s "$TMP/out" ]; then
        why="stdout is not empty"
    else
        case "$first" in
        "$file:$place: error: "*) ;;
        *) why="stderr does not start with '$file:$place: error: '" ;;
        esac
        if [ -z "$why" ] && ! printf '%s\n' "$first" | grep -qF -- "$sub"; then
            why="stderr does not contain '$sub'"
        fi
    fi
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        echo "ok   $file"
    else
        fail=$((fail + 1))
        echo "FAIL $file: $why"
        echo "     stderr: $first"
    fi
}

for f in "$DIR"/*.kf; do
    [ -e "$f" ] || { echo "no .kf files in $DIR"; exit 1; }
    spec=$(head -n 1 "$f" | sed -n 's/^# expect: \([0-9]*:[0-9]*\): \(.*\)$/\1 \2/p')
    if [ -z "$spec" ]; then
        fail=$((fail + 1))
        echo "FAIL $f: no '# expect: LINE:COL: SUBSTRING' first line"
        continue
    fi
    check "$f" "${spec%% *}" "${spec#* }"
done

# Inputs that are better made than committed.
: >"$TMP/empty.kf"
check "$TMP/empty.kf" 1:1 "empty file"
printf 'input a : f32[2]\n\000\000\000garbage\n' >"$TMP/nul.kf"
check "$TMP/nul.kf" 2:1 "unexpected byte 0x00"
printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\003\000>\000' >"$TMP/binary.kf"
check "$TMP/binary.kf" 1:1 "unexpected byte 0x7f"
printf 'input a : f32[2]\ny = relu(a)\n\tz = \377\376\n' >"$TMP/latin.kf"
check "$TMP/latin.kf" 3:6 "unexpected byte 0xff"
# a 4 MB line of one name, then one of commas
head -c 4000000 /dev/zero | tr '\000' 'a' >"$TMP/longname.kf"
check "$TMP/longname.kf" 1:1 "name is too long"
{ printf 'input a : f32[2]\ny = concat(a'; head -c 4000000 /dev/zero | tr '\000' ','; printf ')\noutput y\n'; } >"$TMP/longline.kf"
check "$TMP/longline.kf" 2:14 "expected an expression"

echo "errors: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
