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
nm=${PE_NM:-nm}   # libtool's, from make check: the target's nm
command -v ${nm%% *} > /dev/null 2>&1 || { echo "SKIP: $nm (binutils) is not installed"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/library_symbols.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal

sed -n 's/^PE_API[^(]*[^a-z0-9_]\(pe_[a-z0-9_]*\)(.*/\1/p' "$top"/include/poolecho/*.h |
	sort > "$tmp/declared"
[ "$(wc -l < "$tmp/declared")" -ge 20 ] || fail "only $(wc -l < "$tmp/declared") PE_API functions found in the headers"
# Every defined dynamic symbol, data too, but the version nodes (A) and
# the linker's own (gold exports _edata, _end and __bss_start).
$nm -D --defined-only "$lib" | awk 'NF == 3 && $2 != "A" && $3 !~ /^_/ { print $3 }' |
	sed 's/@.*//' | sort > "$tmp/exported"
if ! cmp -s "$tmp/declared" "$tmp/exported"; then
	echo "exported by $lib but not declared PE_API (>), or declared and not exported (<):"
	diff "$tmp/declared" "$tmp/exported" | grep '^[<>]'
	fail "$lib exports other symbols than its headers' functions"
fi
echo "PASS: $lib exports the $(wc -l < "$tmp/exported") PE_API functions and nothing else"

# pe_parse_getopt_error reads getopt's optind for the command lines; the
# library never calls it. (A test of the .so's undefined symbols would
# fail with gold, which drops the code but keeps its references.)
program_only=pe_parse_getopt_error
$nm .libs/libpecommon.a 2> /dev/null | grep -q " T $program_only\$" ||
	fail "$program_only is not in libpecommon: name another function only the programs call"
if [ -z "$PE_GC_LDFLAGS" ]; then
	echo "note: the linker cannot drop unused code (no --gc-sections), so the programs' helpers stay in $lib"
	exit 0
fi
$nm "$lib" 2> /dev/null | grep -q ' pe_server_create$' ||
	{ echo "note: $lib has no symbol table (stripped): the programs' helpers were not looked for"; exit 0; }
if $nm "$lib" 2> /dev/null | grep -q " $program_only\$"; then
	fail "$lib holds $program_only: code only the programs call was linked into it"
fi
echo "PASS: no code only the programs call ($program_only) in $lib"
