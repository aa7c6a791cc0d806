#!/bin/sh
# The systemd unit make wrote from contrib/poolechod.service.in: its
# ExecStart= runs poolechod from the configured bindir, and systemd-analyze
# (where installed) takes every line of it without a word.
top=${TOP_SRCDIR:-$(dirname "$0")/..}
unit=contrib/poolechod.service
fail() { echo "FAIL: $*"; exit 1; }

[ -f "$unit" ] || fail "$unit was not made (make builds it from $unit.in)"
[ -n "$PE_BINDIR" ] || fail "PE_BINDIR is not set (make check sets it to \$(bindir))"
grep -q "^ExecStart=$PE_BINDIR/poolechod " "$unit" ||
	fail "ExecStart= does not run $PE_BINDIR/poolechod: $(grep '^ExecStart=' "$unit")"
! grep -n '@[a-z_]*@' "$unit" || fail "a placeholder was left in $unit"
grep -q '^Documentation=man:poolechod(8)$' "$unit" && [ -f "$top/man/poolechod.8" ] ||
	fail "Documentation= does not name poolechod(8), or man/poolechod.8 is missing"
echo "PASS: ExecStart=$PE_BINDIR/poolechod"

command -v systemd-analyze > /dev/null 2>&1 ||
	{ echo "SKIP: systemd-analyze is not installed: the unit's directives are not checked"; exit 77; }
[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/unit_file.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# The program not yet installed, the built one stands in; man pages are
# checked above, not by man(1), which a build machine may not have.
sed -e "s|^ExecStart=$PE_BINDIR/poolechod |ExecStart=$POOLECHOD |" -e '/^Documentation=/d' \
	"$unit" > "$tmp/poolechod.service"
out=$(cd "$tmp" && systemd-analyze verify ./poolechod.service 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify (exit $rc): $out"
echo "PASS: systemd-analyze verify says nothing"
