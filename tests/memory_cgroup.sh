#!/bin/sh
# A cgroup memory limit (docker --memory, systemd MemoryMax=) below what the
# workers' buffers can take: the daemon starts, and says at once that the
# OOM killer will end it there, naming the options and the limit; once
# killed (SIGKILL) it can say nothing. Needs root and cgroup v1's memory
# hierarchy, or cgroup2 with the memory controller: else SKIP.
fail() { echo "FAIL: $*"; exit 1; }

[ -x "$POOLECHOD" ] || fail "POOLECHOD ($POOLECHOD) is not a program"
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to make a memory cgroup"; exit 77; }
if [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
	dir=/sys/fs/cgroup/memory/poolecho-test.$$ file=memory.limit_in_bytes
elif grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
	dir=/sys/fs/cgroup/poolecho-test.$$ file=memory.max
else
	echo "SKIP: no memory cgroup controller to use"; exit 77
fi
mkdir "$dir" 2>/dev/null || { echo "SKIP: cannot make $dir"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memory_cgroup.XXXXXX") || exit 1
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; sleep 0.2; rmdir "$dir"; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal
echo $((64 << 20)) > "$dir/$file" || fail "cannot set $dir/$file"
# 128 workers with 1 MiB buffers can take 132 MiB: twice the limit. They
# start (the buffers are not resident yet), so the warning comes first.
sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$dir" \
	"$POOLECHOD" -b 127.0.0.1 -p 0 -w 128 --buffer-size=1m 2> "$tmp/log" &
pid=$!
i=0
while kill -0 "$pid" 2>/dev/null && ! grep -q 'listening on' "$tmp/log"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "poolechod neither started nor failed: $(cat "$tmp/log")"
	sleep 0.1
done
kill "$pid"
wait "$pid"
pid=
grep -q 'warning: cgroup memory limit 64 MiB.*-w/--workers.*--buffer-size' "$tmp/log" ||
	fail "no warning naming the 64 MiB limit, -w and --buffer-size: $(cat "$tmp/log")"
echo "PASS: a 64 MiB memory cgroup below 128 workers' 1 MiB buffers is warned of at start"
