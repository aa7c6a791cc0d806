#!/bin/sh
# make installcheck (and so make distcheck): the programs as installed in
# BINDIR, under the names given (--program-prefix and the like change
# them), run, name VERSION and echo through each other: the installed
# daemon on 127.0.0.1 (a free port), a line through the installed client.
# Usage: installcheck.sh BINDIR VERSION DAEMON_NAME CLIENT_NAME
bindir=$1 version=$2 daemon=$3 client=$4
fail() { echo "installcheck: FAIL: $*"; exit 1; }
[ -n "$bindir" ] && [ -n "$version" ] && [ -n "$daemon" ] && [ -n "$client" ] ||
	fail "usage: $0 BINDIR VERSION DAEMON_NAME CLIENT_NAME"

for prog in "$daemon" "$client"; do
	[ -x "$bindir/$prog" ] || fail "$bindir/$prog is not installed"
	out=$("$bindir/$prog" --version 2>&1) || fail "$bindir/$prog --version: $out"
	first=$(printf '%s\n' "$out" | sed -n 1p)
	case $first in
	*" $version") ;;
	*) fail "$bindir/$prog --version says '$first', not version $version" ;;
	esac
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/poolecho-installcheck.XXXXXX") || exit 1
pid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2> /dev/null; wait "$pid" 2> /dev/null; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

: > "$tmp/log"
"$bindir/$daemon" -b 127.0.0.1 -p 0 -w 2 2> "$tmp/log" &
pid=$!
port=
i=0
while [ $i -lt 100 ] && [ -z "$port" ]; do   # 10 s at most
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$tmp/log")
	if [ -z "$port" ]; then
		kill -0 "$pid" 2> /dev/null || fail "the daemon exited at start: $(cat "$tmp/log")"
		sleep 0.1
		i=$((i + 1))
	fi
done
[ -n "$port" ] || fail "the daemon did not say it listens within 10 s: $(cat "$tmp/log")"

line="installcheck of poolecho $version"
got=$(printf '%s\n' "$line" | "$bindir/$client" --timeout=10 127.0.0.1 "$port" 2>&1) ||
	fail "the client exited $? against the daemon: $got"
[ "$got" = "$line" ] || fail "the echo came back as '$got', not '$line'"

kill "$pid" || fail "cannot stop the daemon (pid $pid)"
wait "$pid"
rc=$?
pid=
[ $rc -eq 0 ] || fail "the daemon exited $rc on SIGTERM: $(cat "$tmp/log")"
grep -q 'stopped: accepted=1 ' "$tmp/log" || fail "the daemon's last line is not 'stopped: accepted=1 ...': $(tail -n 1 "$tmp/log")"
echo "installcheck: $bindir/$daemon and $bindir/$client $version echo each other"
