#!/bin/sh
# Files past 2 GiB, where off_t is 32 bits unless the build asks for
# large files (i386, armhf): a log that has grown past 2 GiB must be taken
# as a file, not refused with EOVERFLOW ("cannot examine standard error").
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/large_files.XXXXXX") || exit 1
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
log=$tmp/poolechod.log
# Sparse: 3 GiB of nothing on disk.
truncate -s 3G "$log" 2>/dev/null ||
	{ echo "SKIP: cannot make a sparse 3 GiB file in ${TMPDIR:-/tmp}"; exit 77; }
start=$((3 * 1024 * 1024 * 1024 + 1))
"$POOLECHOD" -b 127.0.0.1 -p 0 -w 1 2>> "$log" &
pid=$!
i=0
until tail -c +$start "$log" | grep -q 'listening on'; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "poolechod did not say it listens: $(tail -c +$start "$log")"
	kill -0 "$pid" 2>/dev/null || fail "poolechod ended: $(tail -c +$start "$log")"
	sleep 0.1
done
kill "$pid"
wait "$pid"
rc=$?
pid=
lines=$(tail -c +$start "$log")
[ "$rc" -eq 0 ] || fail "poolechod exited $rc: $lines"
echo "$lines" | grep -q 'stopped:' || fail "no 'stopped:' line after 2 GiB: $lines"
! echo "$lines" | grep 'cannot examine standard error' ||
	fail "a log file past 2 GiB was refused"
echo "PASS: a log file past 2 GiB is written and taken as a file"
