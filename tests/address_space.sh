#!/bin/sh
# Workers whose stacks or buffers fill a 32-bit process's address space
# (i386, armhf: 4 GiB at most, with no limit set): the error names the
# option that takes it, not only the thread limits and 'ulimit -v'.
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
# The ELF class, byte 4: 1 for a 32-bit program (a libtool wrapper script is
# no ELF file: its program is in .libs).
prog=$POOLECHOD
[ -f "$(dirname "$prog")/.libs/$(basename "$prog")" ] && prog=$(dirname "$prog")/.libs/$(basename "$prog")
[ "$(od -An -tx1 -j4 -N1 "$prog" | tr -d ' ')" = 01 ] ||
	{ echo "SKIP: $POOLECHOD is no 32-bit program: its address space holds these workers"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/address_space.XXXXXX") || exit 1
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
for case in "--stack-size 64m --stack-size" "--buffer-size 16m --buffer-size"; do
	set -- $case
	"$POOLECHOD" -b 127.0.0.1 -p 0 -w 400 "$1" "$2" 2> "$tmp/log" &
	pid=$!
	i=0
	while kill -0 "$pid" 2>/dev/null && ! grep -q 'listening on' "$tmp/log"; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "poolechod -w 400 $1 $2 neither started nor failed"
		sleep 0.1
	done
	grep -q 'listening on' "$tmp/log" &&
		fail "-w 400 $1 $2 started: a 32-bit address space cannot hold that"
	wait "$pid"
	rc=$?
	pid=
	[ "$rc" -eq 1 ] || fail "-w 400 $1 $2: exit $rc, expected 1: $(cat "$tmp/log")"
	grep -q "address space.*$3" "$tmp/log" ||
		fail "-w 400 $1 $2: the error does not name the address space and $3: $(cat "$tmp/log")"
	echo "PASS: -w 400 $1 $2 names the address space and $3"
done
