#!/bin/sh
# A source and a build tree whose paths hold a space and a letter outside
# ASCII ("My Projects/poolecho é"): Automake and Libtool build there, so the
# shell tests must run there too. The other shell tests are run again
# through symbolic links named so, and make installcheck's script with such
# a BINDIR.
top=${TOP_SRCDIR:-$(dirname "$0")/..}
fail() { echo "FAIL: $*"; exit 1; }

[ -n "$PE_BUILDDIR" ] || fail "PE_BUILDDIR is not set (make check sets it to \$(abs_top_builddir))"
[ -n "$PE_VERSION" ] || fail "PE_VERSION is not set (make check sets it to \$(PACKAGE_VERSION))"
[ -x "$PE_BUILDDIR/src/poolechod" ] || fail "$PE_BUILDDIR/src/poolechod was not built"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/spaced_paths.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
src="$tmp/my src é"
build="$tmp/b uild é"
top=$(cd "$top" && pwd) || fail "cannot enter $top"
ln -s "$top" "$src" && ln -s "$PE_BUILDDIR" "$build" || fail "cannot make the links in $tmp"

for t in man_pages unit_file library_symbols; do
	out=$(cd "$build" && TOP_SRCDIR=$src POOLECHOD=$build/src/poolechod \
		POOLECHO=$build/src/poolecho PE_BUILDDIR=$build sh "$src/tests/$t.sh" 2>&1)
	rc=$?
	case $rc in
	0) echo "PASS: tests/$t.sh from '$build'" ;;
	77) echo "note: tests/$t.sh skips here: $(printf '%s\n' "$out" | tail -n 1)" ;;
	*) fail "tests/$t.sh from '$build' (source '$src'), exit $rc:
$out" ;;
	esac
done
out=$(sh "$src/tests/installcheck.sh" "$build/src" "$PE_VERSION" poolechod poolecho 2>&1) ||
	fail "tests/installcheck.sh with BINDIR '$build/src': $out"
echo "PASS: tests/installcheck.sh with BINDIR '$build/src'"
