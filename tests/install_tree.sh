#!/bin/sh
# make install writes under DESTDIR and nowhere in the build tree, as the
# GNU Coding Standards ask (build as one user, install as another: root on a
# tree it may not write, such as NFS with root_squash); installs every
# manual page, libpoolecho(3) and a .so link to it per exported function,
# each link to a page that is there; and the systemd unit runs the daemon
# as installed (under its new name with --program-prefix and the like).
top=${TOP_SRCDIR:-$(dirname "$0")/..}
fail() { echo "FAIL: $*"; exit 1; }

[ -n "$PE_BUILDDIR" ] || fail "PE_BUILDDIR is not set (make check sets it to \$(abs_top_builddir))"
# strace(1) sees every file the install opens for writing.
strace -o /dev/null true > /dev/null 2>&1 ||
	{ echo "SKIP: strace cannot run here: the install's writes are not watched"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/install_tree.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
out=$(cd "$PE_BUILDDIR" && strace -f -qq -e trace=open,openat,creat -e signal=none \
	-o "$tmp/trace" ${PE_MAKE:-make} install DESTDIR="$tmp/stage" 2>&1) ||
	fail "make install DESTDIR=... failed: $out"
# A file created by path (not under a directory install(1) opened) outside
# DESTDIR: one in the build tree.
written=$(grep -E '(openat\(AT_FDCWD, |open\(|creat\()"[^"]*"' "$tmp/trace" |
	grep -E 'O_CREAT|creat\(' | grep -v "\"$tmp/" | grep -v '"/dev/')
[ -z "$written" ] || fail "make install wrote outside DESTDIR (in the build tree):
$written"
echo "PASS: make install writes nothing outside DESTDIR"

man3=$(find "$tmp/stage" -type d -name man3)
funcs=$(cd "$top" && sed -n 's/^PE_API[^(]*[^a-z0-9_]\(pe_[a-z0-9_]*\)(.*/\1/p' include/poolecho/*.h)
[ -n "$funcs" ] || fail "no PE_API function found in $top/include/poolecho"
for f in $funcs; do
	[ "$(cat "$man3/$f.3" 2>/dev/null)" = ".so man3/libpoolecho.3" ] ||
		fail "$f.3 is not installed as a link to libpoolecho(3)"
done
[ -f "$man3/libpoolecho.3" ] ||
	fail "the pages link to man3/libpoolecho.3, which is not installed: $(ls "$man3" | grep -v '^pe_')"
echo "PASS: $(echo $funcs | wc -w) pages link to libpoolecho(3), which is installed"

exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$PE_BUILDDIR/contrib/poolechod.service")
[ -n "$exe" ] && [ -x "$tmp/stage$exe" ] ||
	fail "contrib/poolechod.service runs '$exe', which make install did not put there: $(ls "$tmp/stage$PE_BINDIR")"
echo "PASS: the unit runs $exe"
