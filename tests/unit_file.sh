#!/bin/sh
# The systemd units make wrote from contrib/poolechod.service.in and
# contrib/poolechod.socket.in: the service's ExecStart= runs poolechod from
# the configured bindir, both name its manual page under its installed
# name, and systemd-analyze (where installed) takes every line of both
# without a word and finds the service's sandbox tight.
top=${TOP_SRCDIR:-$(dirname "$0")/..}
unit=contrib/poolechod.service
socket=contrib/poolechod.socket
fail() { echo "FAIL: $*"; exit 1; }

[ -f "$unit" ] || fail "$unit was not made (make builds it from $unit.in)"
[ -f "$socket" ] || fail "$socket was not made (make builds it from $socket.in)"
[ -n "$PE_BINDIR" ] || fail "PE_BINDIR is not set (make check sets it to \$(bindir))"
# The daemon's installed name (--program-prefix and the like change it).
daemon=${PE_DAEMON_NAME:-poolechod}
grep -q "^ExecStart=$PE_BINDIR/$daemon " "$unit" ||
	fail "ExecStart= does not run $PE_BINDIR/$daemon: $(grep '^ExecStart=' "$unit")"
for f in "$unit" "$socket"; do
	! grep -n '@[a-z_]*@' "$f" || fail "a placeholder was left in $f"
	grep -q "^Documentation=man:$daemon(8)\$" "$f" && [ -f "$top/man/poolechod.8" ] ||
		fail "$f: Documentation= does not name $daemon(8), or man/poolechod.8 is missing"
done
echo "PASS: ExecStart=$PE_BINDIR/$daemon"

command -v systemd-analyze > /dev/null 2>&1 ||
	{ echo "SKIP: systemd-analyze is not installed: the unit's directives are not checked"; exit 77; }
# Without it, verify also reports the units ours is ordered after, and
# whatever they pull in: any unit on the machine with an old key.
systemd-analyze --help 2>&1 | grep -q -- '--recursive-errors' ||
	{ echo "SKIP: this systemd-analyze (before systemd 250) cannot verify one unit alone"; exit 77; }
[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/unit_file.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
# The program not yet installed, the built one stands in, quoted: a build
# tree may have a space in its path, where systemd splits a command line.
# Man pages are checked above, not by man(1), which a build machine may not have.
sed -e "s|^ExecStart=$PE_BINDIR/$daemon |ExecStart=\"$POOLECHOD\" |" -e '/^Documentation=/d' \
	"$unit" > "$tmp/poolechod.service"
out=$(cd "$tmp" && systemd-analyze verify --recursive-errors=no ./poolechod.service 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify (exit $rc): $out"
echo "PASS: systemd-analyze verify says nothing"
# The socket unit, beside the service it starts.
sed -e '/^Documentation=/d' "$socket" > "$tmp/poolechod.socket"
out=$(cd "$tmp" && systemd-analyze verify --recursive-errors=no ./poolechod.socket 2>&1)
rc=$?
[ "$rc" -eq 0 ] && [ -z "$out" ] || fail "systemd-analyze verify poolechod.socket (exit $rc): $out"
echo "PASS: systemd-analyze verify says nothing of poolechod.socket"
# The sandbox: systemd's own score of what the unit leaves exposed, 0 (none)
# to 10, where 2 or below is what it calls OK (1.8 by systemd 252; each
# version weighs the settings its own way).
out=$(cd "$tmp" && systemd-analyze security --offline=true ./poolechod.service 2>&1)
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for poolechod\.service: \([0-9.]*\).*/\1/p')
[ -n "$level" ] || { echo "SKIP: systemd-analyze security --offline gives no exposure level:"; \
	printf '%s\n' "$out" | tail -n 3; exit 77; }
awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' ||
	fail "the unit leaves too much exposed: $level of 10, where 2.0 is the most we allow:
$(printf '%s\n' "$out" | grep '✗' | head -n 20)"
echo "PASS: exposure $level of 10"
