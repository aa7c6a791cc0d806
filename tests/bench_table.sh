#!/bin/sh
# bench/run's tables are what bench/RESULTS.md quotes: check on made-up
# results that a ratio pairs each repetition with ref_epoll's, that a run
# with fewer connections open or served at once than its workload names is
# left out, that a saturated load client is marked, that an RSS from
# failed runs alone says FAIL, and how busy the server's CPU was.
top=${TOP_SRCDIR:-$(dirname "$0")/..}
command -v python3 > /dev/null 2>&1 ||
	{ echo "SKIP: python3 is not installed (bench/ is written in it)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_table.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM # dash runs no EXIT trap on a signal

python3 - "$tmp/results.jsonl" << 'EOF' || exit 1
import json, sys
runs = []
def run(rep, server, workload, value, rss, conns, peak, unserved=0, saturated=False,
        cpu=None):
    runs.append({"rep": rep, "server": server, "workload": workload, "value": value,
                 "unit": "msg/s", "ok": True, "problems": [], "peak_rss_kib": rss,
                 "peak_procs": 1, "commit": "test", "server_cpu_busy": cpu,
                 "client": {"connections": conns, "connections_opened": conns,
                            "peak_open": peak, "connections_unserved": unserved,
                            "client_saturated": saturated}})
# ref_epoll jumps to 200k in repetition 2; poolechod does not. ref_epoll's
# CPU was busy 100%, 80%, 50%: 100k, 250k, 200k per busy second
for rep, ref, pd, busy in ((1, 100e3, 90e3, 1.0), (2, 200e3, 100e3, 0.8),
                           (3, 100e3, 80e3, 0.5)):
    run(rep, "ref_epoll", "pp32", ref, 1600, 32, 32, cpu=busy)
    run(rep, "poolechod", "pp32", pd, 2900, 32, 32, cpu=1.0)
# ref_epoll's pp1 repetition 3 failed: two pairs; the floor ran only once
# (a run cut short)
for rep, ref, pd in ((1, 100e3, 150e3), (2, 100e3, 130e3), (3, 100e3, 160e3)):
    run(rep, "ref_epoll", "pp1", ref, 1600, 1, 1)
    run(rep, "poolechod", "pp1", pd, 2900, 1, 1)
runs[-2]["ok"], runs[-2]["problems"] = False, ["client exit 1"]
run(1, "blocking_floor", "pp1", 110e3, 3200, 1, 1)
# repetition 2 of c10k had only 6,000 of its 10,000 connections open at once
for rep, rss, peak in ((1, 80000, 10000), (2, 200000, 6000), (3, 100000, 10000)):
    run(rep, "ref_epoll", "c10k", 9000, 2000, 10000, 10000)
    run(rep, "poolechod", "c10k", 9000, rss, 10000, peak)
# pp256: the client was saturated in 2 of poolechod's 3 runs; every one of
# them left connections unserved, recorded before that was checked
for rep in (1, 2, 3):
    run(rep, "ref_epoll", "pp256", 100e3, 1600, 256, 256, 0, rep != 2)
    run(rep, "poolechod", "pp256", 90e3, 2900, 256, 256, 0, rep != 3)
    run(rep, "socat", "pp256", 20e3, 9000, 256, 256, 100 + rep)
with open(sys.argv[1], "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in runs)
EOF

python3 "$top/bench/benchlib.py" table "$tmp/results.jsonl" > "$tmp/table" 2>&1
rc=$?
[ "$rc" = 0 ] || { cat "$tmp/table"; echo "FAIL: benchlib.py table exited $rc"; exit 1; }
row=$(grep '^| poolechod |' "$tmp/table" | head -n 1)
fail=0
# pp1: 1.50 and 1.30 in the repetitions both ran cleanly
case $row in
*"| 1.40 [1.30-1.50, 2 pairs] |"*) ;;
*) echo "FAIL: pp1 is not 1.40 [1.30-1.50, 2 pairs]: $row"; fail=1 ;;
esac
grep -q 'Repetitions not run.*blocking_floor pp1: 1 of 3' "$tmp/table" ||
	{ echo "FAIL: the floor's missing repetitions are not noted"; fail=1; }
# the results kept in git are gzip'd: the same table from them
gzip -c "$tmp/results.jsonl" > "$tmp/results.jsonl.gz" &&
	python3 "$top/bench/benchlib.py" table "$tmp/results.jsonl.gz" > "$tmp/table.gz" 2>&1 &&
	cmp -s "$tmp/table" "$tmp/table.gz" ||
	{ echo "FAIL: the table from the .gz file differs"; fail=1; }
# pp32 paired: 0.90, 0.50, 0.80; the medians' ratio would be 0.90
case $row in
*"| 0.80 [0.50-0.90] |"*) ;;
*) echo "FAIL: pp32 is not the median of the paired ratios, 0.80 [0.50-0.90]: $row"; fail=1 ;;
esac
# c10k: repetition 2 left out, the RSS is the median of 80000 and 100000 KiB
case $row in
*"| 87.9 MiB !1/3 |") ;;
*) echo "FAIL: c10k's peak RSS is not 87.9 MiB with 1 of 3 runs left out: $row"; fail=1 ;;
esac
grep -q 'connections open at once 6000/10000' "$tmp/table" ||
	{ echo "FAIL: the run left out does not say why"; fail=1; }
case $row in
*"| 0.90 [0.90-0.90] ^2/3 |"*) ;;
*) echo "FAIL: pp256 does not mark 2 of 3 saturated runs: $row"; fail=1 ;;
esac
grep -q '^| ref_epoll | .*| 1.00 (100k msg/s) ^2/3 |' "$tmp/table" ||
	{ echo "FAIL: ref_epoll's saturated runs are not marked"; fail=1; }
grep -q '^- rep 2 socat pp256: connections_unserved=102$' "$tmp/table" ||
	{ echo "FAIL: a run with unserved connections is not left out saying why"; fail=1; }
grep -q '^| socat | - | - | FAIL !3/3 \[8.8 MiB\] | - |$' "$tmp/table" ||
	{ echo "FAIL: the RSS table does not say FAIL for an RSS of failed runs alone"; fail=1; }
# per busy CPU second, paired: 0.90, 0.40, 0.40
grep -q '^| poolechod | - | 0.40 \[0.40-0.90\] (CPU 100%) |' "$tmp/table" ||
	{ echo "FAIL: the rate per busy CPU second is not 0.40 [0.40-0.90] (CPU 100%)"; fail=1; }
grep -q '^| ref_epoll | - | 1.00 (CPU 80%) |' "$tmp/table" ||
	{ echo "FAIL: ref_epoll's median busy CPU is not 80%"; fail=1; }
# busy_while_loaded: snapshots of (busy, total) jiffies of (server, load);
# the first interval, the load CPU idle, is left out
python3 - "$top/bench" << 'EOF' || fail=1
import sys
sys.path.insert(0, sys.argv[1])
from benchlib import busy_while_loaded
snaps = [((0, 0), (0, 0)), ((10, 100), (5, 100)), ((70, 200), (95, 200)),
         ((150, 300), (185, 300)), ((150, 400), (190, 400))]
got = busy_while_loaded(snaps)
if got != (0.7, 0.9):
    print("FAIL: busy_while_loaded gave %r, not (0.7, 0.9)" % (got,))
    sys.exit(1)
if busy_while_loaded(snaps[:2]) != (None, None):
    print("FAIL: busy_while_loaded counted an interval the load CPU was idle")
    sys.exit(1)
EOF
[ "$fail" = 0 ] || { echo "--- the table:"; cat "$tmp/table"; exit 1; }
echo "PASS: paired ratios, pairs and missing repetitions, the concurrency and service" \
	"checks, saturation marks, FAIL for an RSS of failed runs, .gz input, rates per" \
	"busy CPU second"
