#!/bin/sh
# tinyae — the content stamps of one TFLM library build (mk/tflm/library.mk runs this before it compiles).
#
# make decides by file times, and a re-extracted tarball, a re-downloaded PlatformIO libdeps folder or a
# fresh copy of the same sources gives every file a new time. So the objects do not depend on the
# sources' files but on stamp files that this script rewrites only when what they stand for changes:
#
#   STAMPS/src/<source>.sum   the sha256 of one compiled source (each object depends on its own)
#   STAMPS/headers.sum        one sha256 over every other C-family file under the include roots (headers,
#                             .inc, and sources not compiled on their own, e.g. kiss_fft.c), by path
#                             relative to its root and content: any header edit, addition or removal
#   STAMPS/sources.txt        the list of compiled sources (the archive holds exactly their objects)
#   STAMPS/build-id.txt       the compilers' versions, every flag (the sources' folder written as <src>),
#                             library.mk without its comment lines, and whether the C++ sources are
#                             compiled with the precompiled prefix header (then the content of
#                             mk/tflm/prefix.h and mk/tflm/pch-compile.sh)
#
# A stamp whose content is unchanged keeps its time, so a build whose inputs are the same bytes under new
# times (or at another path) compiles nothing. Run under the library's flock (mk/tflm.mk).
#
#   content-stamps.sh STAMPS ROOT BUILD_ID 'HEADER_ROOTS' SOURCES...
#     ROOT: the folder the SOURCES are relative to; HEADER_ROOTS: `label=dir` words, the label standing
#     for the folder in the digest (so that the same files elsewhere give the same digest)
set -eu
stamps=$1 root=$2 build_id=$3 header_roots=$4
shift 4

# put FILE TEXT: write FILE only when its content differs from TEXT (its time then says "changed").
put() {
    if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
        mkdir -p "$(dirname "$1")"
        printf '%s\n' "$2" >"$1.tmp"
        mv -f "$1.tmp" "$1"
    fi
}

put "$stamps/build-id.txt" "$build_id"
put "$stamps/sources.txt" "$(printf '%s\n' "$@")"

# One sha256sum for all sources; a stamp file per source, rewritten only where the digest changed.
listing=$(mktemp)
trap 'rm -f "$listing" "$listing.c"' EXIT
(cd "$root" && sha256sum -- "$@") >"$listing"
while read -r sum path; do
    put "$stamps/src/$path.sum" "$sum"
done <"$listing"

# The headers: every C-family file under each include root but the compiled sources.
printf '%s\n' "$@" | LC_ALL=C sort >"$listing.c"
headers=$(for word in $header_roots; do
    label=${word%%=*} dir=${word#*=}
    (cd "$dir" && find . -mindepth 1 -name '.*' -prune -o -type f \( -name '*.h' -o -name '*.hh' -o -name '*.hpp' \
        -o -name '*.hxx' -o -name '*.inc' -o -name '*.inl' -o -name '*.ipp' -o -name '*.tcc' -o -name '*.def' \
        -o -name '*.c' -o -name '*.cc' -o -name '*.cpp' -o -name '*.cxx' \) -print |
        sed 's|^\./||' | LC_ALL=C sort | LC_ALL=C comm -23 - "$listing.c" |
        tr '\n' '\0' | xargs -0 -r sha256sum -- | sed "s|  |  $label/|")
done | sha256sum | cut -d' ' -f1)
put "$stamps/headers.sum" "$headers"
