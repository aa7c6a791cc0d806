#!/bin/sh
# libpoolecho.so as a program linking it sees it: it exports the functions
# the headers declare PE_API, no more and no fewer, and none of the code
# only the programs use (parse.c's and log.c's getopt and file helpers)
# came with the helpers it shares with them.
top=${TOP_SRCDIR:-$(dirname "$0")/..}
fail() { echo "FAIL: $*"; exit 1; }

[ -f libpoolecho.la ] || fail "libpoolecho.la was not built (run from the build directory)"
dlname=$(sed -n "s/^dlname='\(.*\)'$/\1/p" libpoolecho.la)
[ -n "$dlname" ] || { echo "SKIP: no shared library was built (--disable-shared)"; exit 77; }
lib=.libs/$dlname
[ -f "$lib" ] || fail "$lib is missing, though libpoolecho.la names it"
command -v nm > /dev/null 2>&1 || { echo "SKIP: nm (binutils) is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/library_symbols.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

sed -n 's/^PE_API[^(]*[^a-z0-9_]\(pe_[a-z0-9_]*\)(.*/\1/p' "$top"/include/poolecho/*.h |
	sort > "$tmp/declared"
[ "$(wc -l < "$tmp/declared")" -ge 20 ] || fail "only $(wc -l < "$tmp/declared") PE_API functions found in the headers"
nm -D --defined-only "$lib" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort > "$tmp/exported"
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
	echo "exported by $lib but not declared PE_API (>), or declared and not exported (<):"
	diff "$tmp/declared" "$tmp/exported" | grep '^[<>]'
	fail "$lib exports other functions than its headers declare"
fi
echo "PASS: $lib exports the $(wc -l < "$tmp/exported") PE_API functions and nothing else"

[ -n "$PE_GC_LDFLAGS" ] ||
	{ echo "SKIP: the linker cannot drop unused code (no --gc-sections): program code stays in"; exit 77; }
# optind is getopt's: only the command lines and parse.c's option helpers
# read it.
if nm -D --undefined-only "$lib" | grep -qw optind; then
	fail "$lib refers to getopt's optind: program code was linked into it"
fi
echo "PASS: no program code (getopt's optind) in $lib"
