#!/bin/sh
# tinyae — compile one C++ source of a TFLM library build with the precompiled prefix header, when the
# source includes every header the prefix holds (mk/tflm/library.mk: the PCH adds nothing to such a
# translation unit, it only parses those headers ahead of the source; a source that includes fewer is
# compiled without it: loading the .gch costs more than it would save).
#
#   pch-compile.sh pch PCH FOLDERS PREFIX CXX FLAGS...   precompile PREFIX to PCH.gch, with PCH a stub
#                                                       beside it and PCH.deps the library headers
#                                                       PREFIX includes
#   pch-compile.sh cc PCH FOLDERS SRC OUT CXX FLAGS...    compile SRC to OUT, with `-include PCH` when
#                                                       every header of PCH.deps is among SRC's own
#                                                       (then it writes OUT.with-pch, an empty file)
#
# The headers are compared as GCC's dependency output (-MM: the library's own headers) spells them, with
# the folders of FOLDERS (`label=dir` words: the sources' folder, this checkout) written as <label>: the
# library build is keyed by content, not by path (content-stamps.sh), so the .gch made from the sources
# at one path serves the same sources at another.
# When a compile with the PCH fails, the same compile again with -Winvalid-pch (and without the -w of
# the library build, which silences it) says whether GCC rejected the .gch and why.
set -eu
mode=$1 pch=$2 folders=$3
shift 3

# headers FILE CXX FLAGS...: the library headers FILE includes, one a line, sorted, FILE itself left out,
# each folder of FOLDERS written as its label (the same headers at another path are the same list).
headers() {
    file=$1
    shift
    "$@" -MM -MT tae-deps "$file" | tr ' \\' '\n\n' | sed -e '/^$/d' -e '/^tae-deps:$/d' | sed 1d |
        TAE_FOLDERS=$folders awk 'BEGIN { n = split(ENVIRON["TAE_FOLDERS"], f, " ") }
            { for (i = 1; i <= n; i++) { eq = index(f[i], "="); dir = substr(f[i], eq + 1) "/"
                  if (index($0, dir) == 1) { $0 = "<" substr(f[i], 1, eq - 1) ">/" substr($0, length(dir) + 1); break } }
              print }' | LC_ALL=C sort -u
}

case $mode in
pch)
    prefix=$1
    shift
    mkdir -p "$(dirname "$pch")"
    rm -f "$pch" "$pch.gch" "$pch.deps"
    headers "$prefix" "$@" >"$pch.deps.tmp"
    if [ ! -s "$pch.deps.tmp" ]; then
        echo "error: $prefix includes no header of the library: nothing to precompile" >&2
        exit 1
    fi
    "$@" -x c++-header "$prefix" -o "$pch.gch.tmp"
    # The stub GCC reads in place of a .gch it rejects: that compile fails instead of passing unseen.
    printf '%s\n' "/* tinyae: the stub of a precompiled prefix header ($prefix), see mk/tflm/pch-compile.sh */" \
        "#error \"tinyae: GCC did not use the precompiled prefix header $pch.gch (rejected or missing)\"" >"$pch"
    mv -f "$pch.deps.tmp" "$pch.deps"
    mv -f "$pch.gch.tmp" "$pch.gch"
    ;;
cc)
    src=$1 out=$2
    shift 2
    use=""
    if [ -z "$(headers "$src" "$@" | LC_ALL=C comm -23 "$pch.deps" -)" ]; then
        use=$pch
    fi
    # OUT.with-pch says which objects were compiled with it (tests/test_tflm_pch.py reads it).
    rm -f "$out.with-pch"
    if [ -z "$use" ]; then
        exec "$@" -c "$src" -o "$out"
    fi
    if "$@" -include "$use" -c "$src" -o "$out"; then
        : >"$out.with-pch"
        exit 0
    fi
    why=""
    for word in "$@"; do
        [ "$word" = -w ] || why="$why '$word'"
    done
    eval "$why -Winvalid-pch -include '$use' -fsyntax-only '$src'" 2>&1 | grep -F 'Winvalid-pch' >&2 || true
    exit 1
    ;;
*)
    echo "usage: pch-compile.sh pch|cc ..." >&2
    exit 2
    ;;
esac
