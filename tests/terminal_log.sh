#!/bin/sh
# poolechod's log on a terminal it cannot open again (one kept across a
# change of user: setpriv, runit's chpst, su) goes through the log's writer
# thread: every line reaches the terminal, to the last one of the stop, and
# the daemon starts and stops as elsewhere. No other test puts a terminal
# on stderr, so that thread never ran in the suite.
# Needs root (to give the terminal away and drop the capabilities that
# would open it all the same), script(1) and setpriv(1): else SKIP.
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root, to give the terminal to nobody"; exit 77; }
command -v script >/dev/null && command -v setpriv >/dev/null ||
	{ echo "SKIP: needs script(1) and setpriv(1)"; exit 77; }
drop=-dac_override,-dac_read_search,-fowner
setpriv --bounding-set=$drop --inh-caps=$drop true 2>/dev/null ||
	{ echo "SKIP: setpriv cannot drop $drop here (no CAP_SETPCAP?)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/terminal_log.XXXXXX") || exit 1
spid=
# A failure leaves no daemon behind: the one this test started, by its PID.
trap '[ -s "$tmp/pid" ] && kill -9 "$(cat "$tmp/pid")" 2>/dev/null
[ -n "$spid" ] && kill -9 "$spid" 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal

# script(1) gives the daemon a terminal, mode 620, given here to nobody: as
# after a change of user, open("/proc/self/fd/2") then fails with EACCES
# (root without the capabilities that pass over file modes), so the writer
# thread is used. Root stays root: a build tree nobody may enter (a
# mktemp -d clone, as in CI) runs all the same.
cat > "$tmp/run" <<EOS
echo \$\$ > "$tmp/pid"
chown 65534 "\$(readlink /proc/self/fd/0)" || exit 1
exec setpriv --bounding-set=$drop --inh-caps=$drop "$POOLECHOD" -b 127.0.0.1 -p 0 -w 2
EOS
: > "$tmp/out"
RUN=$tmp/run script -qfec 'sh "$RUN"' /dev/null > "$tmp/out" 2>&1 < /dev/null &
spid=$!
i=0
while ! grep -q 'listening on' "$tmp/out"; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 "$spid" 2>/dev/null || fail "no start: $(cat "$tmp/out")"
	sleep 0.1
done
dpid=$(cat "$tmp/pid")
case $(readlink "/proc/$dpid/fd/2") in
/dev/pts/*) ;;
*) fail "stderr of $dpid is not a terminal: $(readlink "/proc/$dpid/fd/2")" ;;
esac
# Else the daemon could open its terminal again and the test would pass
# without the writer thread: the terminal is nobody's, and CAP_DAC_OVERRIDE
# (bit 1) and CAP_DAC_READ_SEARCH (bit 2) are not the daemon's.
[ "$(stat -L -c %u "/proc/$dpid/fd/2")" = 65534 ] || fail "the terminal is not nobody's"
caps=$(sed -n 's/^CapEff:[[:space:]]*//p' "/proc/$dpid/status")
[ -n "$caps" ] && [ $((0x$caps & 6)) -eq 0 ] || fail "the daemon keeps CapEff $caps"
kill -TERM "$dpid"
i=0
while kill -0 "$spid" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "SIGTERM did not end the daemon: $(cat "$tmp/out")"
	sleep 0.1
done
wait "$spid"
rc=$?
rm -f "$tmp/pid" # ended: its number may be another's now
spid=
[ "$rc" -eq 0 ] || fail "exit $rc, expected 0: $(cat "$tmp/out")"
grep -q 'SIGTERM received: stopping' "$tmp/out" || fail "no stop line: $(cat "$tmp/out")"
grep -q 'stopped: accepted=0' "$tmp/out" ||
	fail "the last line, written as the process ends, was lost: $(cat "$tmp/out")"
echo "PASS: the log on a terminal that cannot be reopened is whole, to its last line"
