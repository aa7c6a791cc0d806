#!/bin/sh
# poolechod as PID 1 of a PID namespace (a container with no init): the
# kernel drops there any signal left at its default action, so SIGQUIT,
# which "ends it at once", must be caught; SIGTERM stops it as anywhere.
# Needs unshare(1) and a PID namespace (root, or user namespaces): else SKIP.
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
userns=
[ "$(id -u)" -eq 0 ] || userns=-r
unshare $userns -pf true 2>/dev/null || { echo "SKIP: cannot make a PID namespace"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pid1_signals.XXXXXX") || exit 1
upid=
trap '[ -n "$upid" ] && kill -9 "$upid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
# Start the daemon as PID 1 under env(1) with ARGS (how its signals start
# out): unshare -f forks it, PID 1 inside; its PID here goes in $dpid.
start_pid1() {
	env "$@" unshare $userns -pf "$POOLECHOD" -b 127.0.0.1 -p 0 -w 2 2> "$tmp/log" &
	upid=$!
	i=0
	while ! grep -q 'listening on' "$tmp/log"; do
		i=$((i + 1))
		[ $i -lt 100 ] && kill -0 "$upid" 2>/dev/null || fail "no start: $(cat "$tmp/log")"
		sleep 0.1
	done
	dpid=$(ps -o pid= --ppid "$upid" | tr -d ' ')
	[ -n "$dpid" ] || fail "no daemon under unshare $upid"
}

# Wait (3 s at most) for the daemon to end after WHAT; its exit status in $rc.
wait_pid1() {
	i=0
	while kill -0 "$dpid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 30 ] || { kill -9 "$dpid"; fail "$1 left PID 1 running: $(cat "$tmp/log")"; }
		sleep 0.1
	done
	wait "$upid"
	rc=$?
	upid=
}

for sig in TERM QUIT; do
	start_pid1 --default-signal=INT,QUIT
	kill -"$sig" "$dpid"
	wait_pid1 "SIG$sig"
	case $sig in
	TERM) [ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc, expected 0" ;;
	QUIT) [ "$rc" -eq 131 ] || fail "SIGQUIT: exit $rc, expected 131" ;;
	esac
	echo "PASS: SIG$sig ends poolechod as PID 1 (exit $rc)"
done
# SIGQUIT ignored at start (as --help says) stays ignored, PID 1 or not:
# the SIGTERM sent after it is what ends the daemon, with exit 0, not 131.
start_pid1 --default-signal=INT --ignore-signal=QUIT
kill -QUIT "$dpid"
kill -TERM "$dpid"
wait_pid1 "SIGTERM"
[ "$rc" -eq 0 ] || fail "SIGQUIT ignored at start, then SIGTERM: exit $rc, expected 0: $(cat "$tmp/log")"
echo "PASS: SIGQUIT ignored at start stays ignored as PID 1"
