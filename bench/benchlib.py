#!/usr/bin/env python3
"""benchlib.py -- the Python side of bench/run (standard library only).

bench/run (bash) starts and stops the servers and the load; this helper does
what is awkward in shell: find a free port, wait for a listener, check that a
server echoes, sample a server's process tree for peak RSS, turn one run's
outputs into a JSON line, and print the table of medians from those lines.

Usage: benchlib.py freeport
       benchlib.py waitlisten PORT SECS [PID]
       benchlib.py echocheck PORT SECS
       benchlib.py quiet SECS LIMIT_PERCENT
       benchlib.py netcount                          (TCP counters, JSON)
       benchlib.py sample PID OUTFILE [--tree]      (until SIGTERM)
       benchlib.py builds [--tree DIR] PROGRAM...    (what was measured, JSON)
       benchlib.py record OPTIONS...                 (appends one JSON line)
       benchlib.py table RESULTS.jsonl [--markdown]
"""

import gzip
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

# Workloads in table order: what each measures and how to read its figure.
# metric: msg/s (messages echoed per second), MB/s (bytes echoed, 10^6), conn/s.
WORKLOADS = {
    "pp1": "msg/s", "pp32": "msg/s", "pp256": "msg/s", "pp1000": "msg/s",
    "bulk1": "MB/s", "bulk8": "MB/s", "churn8": "conn/s",
    "c1000": "msg/s", "c10k": "msg/s",
}
# Workloads whose figure is a ratio to the reference in the main table;
# c1000 and c10k are paced (--rate), so what they show is memory and whether
# every connection echoed, not speed.
RATIO_WORKLOADS = ["pp1", "pp32", "pp256", "pp1000", "bulk1", "bulk8", "churn8"]
MEMORY_WORKLOADS = ["c1000", "c10k"]
REFERENCE = "ref_epoll"
FLOOR = "blocking_floor"


def die(msg, code=1):
    sys.stderr.write("benchlib: %s\n" % msg)
    sys.exit(code)


# ---------------------------------------------------------------- ports

def cmd_freeport(args):
    """A port that was free a moment ago, for servers that cannot take port 0."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def listening(port):
    """Whether something listens on 127.0.0.1:PORT (or any address), read from
    /proc/net/tcp so that no connection is made (a forking server would fork)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state = fields[1], fields[3]
                if state == "0A" and local.endswith(want) and \
                        local[:8] in ("0100007F", "00000000"):
                    return True
    except OSError:
        pass
    return False


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmd_waitlisten(args):
    """Wait (bounded) until PORT listens; fail early if PID died."""
    port, secs = int(args[0]), float(args[1])
    pid = int(args[2]) if len(args) > 2 else 0
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if listening(port):
            return
        if pid and not pid_alive(pid):
            die("server (pid %d) exited before listening on port %d" % (pid, port))
        time.sleep(0.02)
    die("nothing listens on 127.0.0.1:%d after %.0f s" % (port, secs))


def cmd_echocheck(args):
    """Send a few kilobytes with zero bytes in them and check they come back."""
    port, secs = int(args[0]), float(args[1])
    data = bytes((i * 31 + 7) % 256 for i in range(4096)) + b"\0hello\r\n"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=secs)
        s.settimeout(secs)
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        s.close()
    except OSError as e:
        die("echo check on 127.0.0.1:%d: %s" % (port, e))
    if got != data:
        die("echo check on 127.0.0.1:%d: sent %d bytes, got back %d%s" %
            (port, len(data), len(got), "" if len(got) != len(data) else " (different)"))


def cpu_times():
    """(busy, total) jiffies over all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        vals = [int(x) for x in f.readline().split()[1:]]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return sum(vals) - idle, sum(vals)


def cmd_quiet(args):
    """Wait up to SECS for the machine to be quiet (under LIMIT % busy over a
    0.3 s window, all CPUs); print the last busy percentage seen. Other jobs
    on a shared machine skew the figures: each run records this number."""
    secs, limit = float(args[0]), float(args[1])
    deadline = time.monotonic() + secs
    while True:
        b0, t0 = cpu_times()
        time.sleep(0.3)
        b1, t1 = cpu_times()
        busy = 100.0 * (b1 - b0) / max(1, t1 - t0)
        if busy < limit or time.monotonic() >= deadline:
            print("%.0f" % busy)
            return


# ---------------------------------------------------------------- TCP counters

# Counters of /proc/net/netstat's TcpExt that a run's figure depends on: a
# SYN the listen queue had no room for is dropped, and its client sends it
# again about a second later, which a 3 s run cannot hide.
NET_COUNTERS = {"ListenOverflows": "listen_overflows", "TCPSynRetrans": "syn_retrans"}


def net_counts():
    """The NET_COUNTERS of this network namespace, or {} where unreadable."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    for names, values in zip(lines, lines[1:]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return {k: int(row[k]) for k in NET_COUNTERS if k in row}
    return {}


def cmd_netcount(args):
    """Print the TCP counters now, for record's --net-before."""
    print(json.dumps(net_counts()))


# ---------------------------------------------------------------- memory

def status_fields(pid):
    """VmHWM and VmRSS in KiB and the thread count of one process, or None."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key, _, val = line.partition(":")
                if key in ("VmHWM", "VmRSS", "Threads"):
                    out[key] = int(val.split()[0])
    except (OSError, ValueError):
        return None
    return out if "VmHWM" in out else None


def children(pid):
    """Direct children of every thread of PID (/proc/PID/task/TID/children)."""
    kids = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            pass
    return kids


def tree(pid):
    """PID and all its descendants (bounded: a cycle cannot occur, but a
    runaway tree is cut at 100,000 processes)."""
    seen, todo = [], [pid]
    while todo and len(seen) < 100000:
        p = todo.pop()
        seen.append(p)
        todo.extend(children(p))
    return seen


def cpu_jiffies(cpus):
    """(busy, total) jiffies of each of CPUS, from /proc/stat; None for a CPU
    it does not list. Busy is all but idle and iowait: softirq (on loopback
    much of TCP is done there, on the CPU that sent), steal (a hypervisor's
    other guests), and any other process on that CPU."""
    want = {"cpu%d" % c: i for i, c in enumerate(cpus)}
    out = [None] * len(cpus)
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, _, rest = line.partition(" ")
                if name in want:
                    vals = [int(x) for x in rest.split()[:8]]
                    total = sum(vals)
                    out[want[name]] = (total - vals[3] - vals[4], total)
    except (OSError, ValueError, IndexError):
        pass
    return out


def busy_while_loaded(snaps):
    """From successive cpu_jiffies((server, load)) snapshots: the busy
    fractions of the server CPU and of the load CPU, summed over the
    intervals where the load CPU was at least half busy (the client at work;
    its start and its end are left out). None without such an interval."""
    sb = st = lb = lt = 0
    for (s0, l0), (s1, l1) in zip(snaps, snaps[1:]):
        if None in (s0, l0, s1, l1) or l1[1] <= l0[1] or s1[1] <= s0[1]:
            continue
        if (l1[0] - l0[0]) * 2 < l1[1] - l0[1]:
            continue
        sb, st = sb + s1[0] - s0[0], st + s1[1] - s0[1]
        lb, lt = lb + l1[0] - l0[0], lt + l1[1] - l0[1]
    if not st or not lt:
        return None, None
    return round(sb / st, 3), round(lb / lt, 3)


def cmd_sample(args):
    """Sample PID (and with --tree its descendants) until SIGTERM; then write
    the peak of the summed VmHWM, the peak process count and the peak thread
    count to OUTFILE as JSON. Sums of forked children count their shared pages
    (libc, the parent's copy-on-write pages) once per process, as RSS does.
    With --cpus S,L, also how busy the server's CPU S and the load's CPU L
    were while the load ran (busy_while_loaded)."""
    pid, outfile = int(args[0]), args[1]
    walk = "--tree" in args[2:]
    cpus = None
    if "--cpus" in args[2:]:
        cpus = [int(c) for c in args[args.index("--cpus") + 1].split(",")]
    snaps = []
    peak = {"peak_rss_kib": 0, "peak_procs": 0, "peak_threads": 0, "samples": 0,
            "server_alive": True}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    def sample():
        if cpus:
            snaps.append(cpu_jiffies(cpus))
        pids = tree(pid) if walk else [pid]
        total = procs = threads = 0
        for p in pids:
            st = status_fields(p)
            if st is None:
                continue
            total += st["VmHWM"]
            procs += 1
            threads += st.get("Threads", 1)
        if procs == 0:
            return False
        peak["peak_rss_kib"] = max(peak["peak_rss_kib"], total)
        peak["peak_procs"] = max(peak["peak_procs"], procs)
        peak["peak_threads"] = max(peak["peak_threads"], threads)
        peak["samples"] += 1
        return True

    interval = 0.1
    first = True
    while not stop:
        t0 = time.monotonic()
        if not sample():
            peak["server_alive"] = False
            break
        if first:
            first = False
            open(outfile + ".ready", "w").close()
        # A big tree (10,000 forked children) is costly to walk: never spend
        # more than about a fifth of the time sampling.
        spent = time.monotonic() - t0
        time.sleep(max(interval, 4 * spent))
    if not stop or peak["server_alive"]:
        # one last sample: VmHWM only grows, so this catches a late peak
        if not sample() and peak["samples"] == 0:
            peak["server_alive"] = False
    peak["server_alive"] = peak["server_alive"] and pid_alive(pid)
    if cpus:
        peak["server_cpu_busy"], peak["load_cpu_busy"] = busy_while_loaded(snaps)
    with open(outfile, "w") as f:
        json.dump(peak, f)


# ---------------------------------------------------------------- one run

def load_json(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    if not text:
        return None
    try:
        return json.loads(text.splitlines()[-1])
    except ValueError:
        return None


def tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])[-400:]


def build_of(path):
    """A program's checksum, version line and, when it was built in an
    Autotools tree (PATH is BUILDDIR/src/PROG), the CFLAGS configure
    recorded and the source tree configure ran from."""
    path = os.path.abspath(path)
    info = {"path": path}
    try:
        with open(path, "rb") as f:
            info["sha256"] = hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        info["error"] = e.strerror
        return info
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        info["version"] = out.splitlines()[0] if out else None
    except (OSError, subprocess.SubprocessError):
        info["version"] = None
    src = os.path.dirname(path)
    if os.path.basename(src) != "src":
        return info
    builddir = os.path.dirname(src)
    try:
        with open(os.path.join(builddir, "config.log")) as f:
            for line in f:
                if line.startswith("  $ ") and "configure" in line and "srcdir" not in info:
                    configure = line[4:].split()[0]
                    info["srcdir"] = os.path.realpath(
                        os.path.join(builddir, os.path.dirname(configure)))
                elif line.startswith(("CFLAGS=", "SAN_CFLAGS=")):
                    key, _, val = line.rstrip("\n").partition("=")
                    info[key.lower()] = val.strip("'")
    except OSError:
        pass
    return info


def cmd_builds(args):
    """builds --tree DIR PROGRAM...: one JSON object, each program by its
    base name; on stderr, a note for each not built from DIR's sources."""
    tree = None
    if args[:1] == ["--tree"]:
        tree, args = os.path.realpath(args[1]), args[2:]
    builds = {os.path.basename(p): build_of(p) for p in args}
    for b in builds.values():
        if "error" in b:
            sys.stderr.write("bench/run: note: cannot read %s: %s\n" % (b["path"], b["error"]))
        elif tree and b.get("srcdir") != tree:
            sys.stderr.write("bench/run: note: %s was not built from this tree's sources "
                             "(%s): the results record its checksum, version and CFLAGS, "
                             "but their commit is the scripts' only\n"
                             % (b["path"], b.get("srcdir") or "no config.log beside it"))
    print(json.dumps(builds, sort_keys=True))


def cmd_record(args):
    """record --out F --server S --workload W --rep N --rc RC --client-json F
       --client-err F --sampler F --conns N --messages N --command CMD
       --server-cmd CMD --server-log F --commit C [--timeout-hit 0|1]
       [--server-cpu N --load-cpu N]
    Checks one run, appends its JSON line to --out and prints a summary."""
    opt = {}
    it = iter(args)
    for a in it:
        if not a.startswith("--"):
            die("record: unexpected argument %r" % a, 2)
        opt[a[2:]] = next(it, "")
    client = load_json(opt["client-json"])
    sampled = load_json(opt["sampler"]) or {}
    rc = int(opt["rc"])
    conns = int(opt.get("conns") or 0)
    want_msgs = int(opt.get("messages") or 0)
    workload = opt["workload"]
    problems = []
    if rc == 124 or rc == 137:
        problems.append("client killed by the run timeout")
    elif rc != 0:
        problems.append("client exit %d" % rc)
    value = None
    if client is None:
        problems.append("no JSON report (%s)" % (tail(opt["client-err"]) or "no output"))
    else:
        for key in ("errors", "mismatches", "early_closes", "timeouts",
                    "connect_failures", "other_errors"):
            if client.get(key):
                problems.append("%s=%d" % (key, client[key]))
        if client.get("interrupted"):
            problems.append("interrupted")
        if client.get("first_error"):
            problems.append("first error: %s" % client["first_error"])
        if workload != "churn8" and client.get("connections_opened", 0) < conns:
            problems.append("connections opened %d/%d" %
                            (client.get("connections_opened", 0), conns))
        problems.extend(concurrency_problems(workload, client))
        problems.extend(service_problems(client))
        if want_msgs and client.get("messages_echoed", 0) != want_msgs:
            problems.append("messages echoed %d/%d" %
                            (client.get("messages_echoed", 0), want_msgs))
        if client.get("messages_echoed", 0) == 0:
            problems.append("nothing echoed")
        dur = client.get("duration_s") or 0
        if dur > 0:
            unit = WORKLOADS.get(workload, "msg/s")
            if unit == "MB/s":
                value = client.get("bytes_echoed", 0) / dur / 1e6
            elif unit == "conn/s":
                value = client.get("connections_opened", 0) / dur
            else:
                value = client.get("messages_echoed", 0) / dur
    # What the kernel counted since just before the client started: on
    # loopback, the server's listen queue and the client's SYNs.
    before, after = load_json(opt.get("net-before", "")) or {}, net_counts()
    net = {NET_COUNTERS[k]: after[k] - before[k] for k in NET_COUNTERS
           if k in before and k in after}
    if sampled and not sampled.get("server_alive", True):
        problems.append("server died during the run (%s)" % tail(opt.get("server-log", "")))
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": opt.get("commit", ""),
        "rep": int(opt["rep"]),
        "server": opt["server"],
        "workload": workload,
        "unit": WORKLOADS.get(workload, "msg/s"),
        "value": value,
        "ok": not problems,
        "problems": problems,
        "peak_rss_kib": sampled.get("peak_rss_kib"),
        "peak_procs": sampled.get("peak_procs"),
        "peak_threads": sampled.get("peak_threads"),
        "rss_samples": sampled.get("samples"),
        "busy_before_pct": float(opt["busy"]) if opt.get("busy") else None,
        "client_rc": rc,
        "client_command": opt.get("command", ""),
        "builds": json.loads(opt["builds"]) if opt.get("builds") else None,
        "server_command": opt.get("server-cmd", ""),
        "server_cpu": int(opt["server-cpu"]) if opt.get("server-cpu") else None,
        "load_cpu": int(opt["load-cpu"]) if opt.get("load-cpu") else None,
        "server_cpu_busy": sampled.get("server_cpu_busy"),
        "load_cpu_busy": sampled.get("load_cpu_busy"),
        "client": client,
        "listen_overflows": net.get("listen_overflows"),
        "syn_retrans": net.get("syn_retrans"),
    }
    with open(opt["out"], "a") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
    fig = "-" if value is None else human(value, line["unit"])
    rss = "-" if line["peak_rss_kib"] is None else "%.1f MiB" % (line["peak_rss_kib"] / 1024)
    procs = line["peak_procs"] or 0
    # How busy the load was: near 100% the rate may be the client's limit.
    busiest = (client or {}).get("client_busiest")
    net_counted = net_text(line)
    print("  rep %d %-9s %-7s %14s  rss %s%s%s%s%s  %s" % (
        line["rep"], line["server"], workload, fig, rss,
        " (%d procs)" % procs if procs > 1 else "",
        "  client %.0f%% busy" % (busiest * 100) if busiest is not None else "",
        "  server CPU %.0f%% busy" % (line["server_cpu_busy"] * 100)
        if line["server_cpu_busy"] is not None else "",
        "  " + net_counted if net_counted else "",
        "ok" if not problems else "BAD: " + "; ".join(problems)))
    sys.stdout.flush()


def concurrency_problems(workload, client):
    """A workload named for N connections must have had N open at once:
    opened one after another (a burst's late SYNs waiting out a lost one
    while the first connections finish) they measure something smaller.
    Churn opens them one by one on purpose."""
    if workload == "churn8" or not client:
        return []
    want, peak = client.get("connections", 0), client.get("peak_open")
    # fewer opened at all is reported as such
    if peak is None or peak >= want or client.get("connections_opened", 0) < want:
        return []
    return ["connections open at once %d/%d" % (peak, want)]


def service_problems(client):
    """Connections the server left waiting (not a byte of their first echo
    by the stop), or that the run gave up: all open, but fewer served at
    once than the workload names, so its figure measures fewer."""
    return ["%s=%d" % (k, client[k]) for k in ("connections_unserved", "connections_abandoned")
            if client and client.get(k)]


# ---------------------------------------------------------------- table

def recheck(r):
    """Apply to a stored run the checks added after it was recorded."""
    for p in (concurrency_problems(r["workload"], r.get("client")) +
              service_problems(r.get("client"))):
        if p not in r["problems"]:
            r["problems"].append(p)
            r["ok"] = False


def paired_ratios(cells, server, base, w):
    """server's rate over base's in each repetition where both ran cleanly:
    the two ran seconds apart, so each pair shares the machine's spell."""
    def by_rep(s):
        return {r["rep"]: r["value"] for r in cells.get((s, w), [])
                if r["ok"] and r["value"]}
    mine, theirs = by_rep(server), by_rep(base)
    return sorted(mine[k] / theirs[k] for k in mine if k in theirs)


def human(v, unit):
    if unit == "MB/s":
        return "%.0f MB/s" % v
    if v >= 100e3:
        return "%.0fk %s" % (v / 1e3, unit)
    if v >= 10e3:
        return "%.1fk %s" % (v / 1e3, unit)
    return "%.0f %s" % (v, unit)


def mib(kib):
    return "%.1f MiB" % (kib / 1024.0)


def cmd_table(args):
    """Median tables from a results file: ratios to the reference, peak RSS."""
    if not args:
        die("table: which results file?", 2)
    runs = []
    opener = gzip.open if args[0].endswith(".gz") else open  # the results kept in git
    with opener(args[0], "rt") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    runs.append(json.loads(line))
                except ValueError:
                    sys.stderr.write("benchlib: %s:%d: not JSON, skipped\n" % (args[0], n))
                    continue
                recheck(runs[-1])
    if not runs:
        die("table: %s holds no runs" % args[0])

    servers, workloads = [], []
    for r in runs:
        if r["server"] not in servers:
            servers.append(r["server"])
        if r["workload"] not in workloads:
            workloads.append(r["workload"])
    if REFERENCE in servers:
        servers.remove(REFERENCE)
        servers.insert(0, REFERENCE)
    order = list(WORKLOADS)
    workloads.sort(key=lambda w: order.index(w) if w in order else 99)
    cells = {}
    for r in runs:
        cells.setdefault((r["server"], r["workload"]), []).append(r)
    commits = sorted({r.get("commit", "") for r in runs if r.get("commit")})
    reps = max(r["rep"] for r in runs)

    def good(s, w):
        return [r for r in cells.get((s, w), []) if r["ok"] and r["value"] is not None]

    def median_value(s, w):
        vals = [r["value"] for r in good(s, w)]
        return statistics.median(vals) if vals else None

    def bad_mark(s, w):
        all_runs = cells.get((s, w), [])
        bad = len(all_runs) - len(good(s, w))
        return "" if bad == 0 else " !%d/%d" % (bad, len(all_runs))

    def saturated_mark(s, w):
        clean = good(s, w)
        hit = sum(1 for r in clean if (r.get("client") or {}).get("client_saturated"))
        return "" if hit == 0 else " ^%d/%d" % (hit, len(clean))

    def spread(s, w):
        vals = [r["value"] for r in good(s, w)]
        if len(vals) < 2:
            return None
        m = statistics.median(vals)
        return (max(vals) - min(vals)) / 2 / m if m else None

    def rss_cell(s, w):
        rs = [r for r in good(s, w) if r.get("peak_rss_kib")]
        if not rs:
            rs = [r for r in cells.get((s, w), []) if r.get("peak_rss_kib")]
            if not rs:
                return "-"
        kib = statistics.median(r["peak_rss_kib"] for r in rs)
        procs = max(r.get("peak_procs") or 1 for r in rs)
        return mib(kib) + (" (%d procs)" % procs if procs > 1 else "")

    def rss_or_fail(s, w):
        """The peak RSS; of failed runs only where none was clean, saying so."""
        if not cells.get((s, w)):
            return "-"
        if not good(s, w):
            return "FAIL" + bad_mark(s, w) + " [" + rss_cell(s, w) + "]"
        return rss_cell(s, w) + bad_mark(s, w)

    ratio_cols = [w for w in RATIO_WORKLOADS if w in workloads]
    mem_cols = [w for w in MEMORY_WORKLOADS if w in workloads]
    out = []
    out.append("%d interleaved repetition%s%s. Each figure is the median over the "
               "repetitions of the server's rate" % (reps, "" if reps == 1 else "s",
                                                    " (commit %s)" % ", ".join(commits)
                                                    if commits else ""))
    out.append("over %s's in the same repetition (higher is faster), with the lowest and "
               "highest of those ratios in brackets;" % REFERENCE)
    out.append("the %s row gives its absolute median. '!k/n': k of n runs had errors, "
               "mismatches or too few connections open or served at once and are left out; "
               "FAIL: no clean run;"
               % REFERENCE)
    out.append("'k pairs': only k repetitions where both servers ran cleanly. '^k/n': in k of "
               "the n clean runs the load client was")
    out.append("saturated (client_saturated in its report): that server's rate is the "
               "client's limit as much as its own; a ratio")
    out.append("is then pulled towards 1.00 when both are marked, a lower bound when only "
               "the server is, an upper bound when only %s is." % REFERENCE)
    cpus = sorted({(r.get("server_cpu"), r.get("load_cpu")) for r in runs
                   if r.get("server_cpu") is not None})
    out.append("CPUs (server, load): %s." % (", ".join("%d, %d" % c for c in cpus) if cpus else
                                              "not recorded (results before they were)"))
    out.append("")
    head = ["server"] + ratio_cols + ["peak RSS %s" % w for w in mem_cols]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    def ratio_cell(s, w):
        v, mark = median_value(s, w), bad_mark(s, w)
        if v is None:
            return "FAIL" + mark if cells.get((s, w)) else "-"
        mark += saturated_mark(s, w)
        if s == REFERENCE:
            return "1.00 (%s)%s" % (human(v, WORKLOADS[w]), mark)
        ratios = paired_ratios(cells, s, REFERENCE, w)
        if not ratios:
            return "(%s)%s" % (human(v, WORKLOADS[w]), mark)
        pairs = "" if len(ratios) == len(good(s, w)) == reps else ", %d pairs" % len(ratios)
        return "%.2f [%.2f-%.2f%s]%s" % (statistics.median(ratios), ratios[0], ratios[-1],
                                         pairs, mark)

    for s in servers:
        row = [s] + [ratio_cell(s, w) for w in ratio_cols] + [rss_or_fail(s, w)
                                                              for w in mem_cols]
        out.append("| " + " | ".join(row) + " |")

    out.append("")
    out.append("Peak RSS of the server during each workload (median over clean runs, or "
               "FAIL with the median of the failed runs in brackets; forking servers: the "
               "peak sum over the process tree, with the peak process count):")
    out.append("")
    head = ["server"] + workloads
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for s in servers:
        out.append("| " + " | ".join([s] + [rss_or_fail(s, w) for w in workloads]) + " |")

    if reps < 2:
        out.append("")
        out.append("(One repetition: no noise estimate.)")
    else:
        noise_table(out, servers, workloads, spread)
        medians_table(out, servers, ratio_cols, median_value)
    floor_table(out, cells, ratio_cols)
    cpu_table(out, cells, servers, ratio_cols)
    missing_note(out, cells, servers, workloads, reps)
    busy_note(out, runs)
    net_note(out, runs)
    problem_list(out, runs)
    print("\n".join(out))


def noise_table(out, servers, workloads, spread):
    out.append("")
    out.append("Noise: half the spread (max - min) / 2 of the clean runs, relative to their "
               "median:")
    out.append("")
    head = ["server"] + workloads
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for s in servers:
        row = [s]
        for w in workloads:
            sp = spread(s, w)
            row.append("-" if sp is None else "±%.0f%%" % (sp * 100))
        out.append("| " + " | ".join(row) + " |")


def medians_table(out, servers, workloads, median_value):
    """The statistic the tables gave before the paired one: it divides medians
    that may come from different repetitions, so one server's fast spell can
    meet the other's slow one. Kept to compare with figures quoted earlier."""
    out.append("")
    out.append("For comparison with tables printed before commit debd3c0: the server's "
               "median over %s's median, which pairs no repetitions:" % REFERENCE)
    out.append("")
    out.append("| " + " | ".join(["server"] + workloads) + " |")
    out.append("|" + "---|" * (len(workloads) + 1))
    for s in servers:
        if s == REFERENCE:
            continue
        row = [s]
        for w in workloads:
            v, ref = median_value(s, w), median_value(REFERENCE, w)
            row.append("%.2f" % (v / ref) if v is not None and ref else "-")
        out.append("| " + " | ".join(row) + " |")


def floor_table(out, cells, workloads):
    """poolechod over the blocking floor, paired within each repetition."""
    rows = []
    for w in workloads:
        ratios = paired_ratios(cells, "poolechod", FLOOR, w)
        if ratios:
            rows.append("| %s | %.2f | %.2f-%.2f | %d |" % (
                w, statistics.median(ratios), ratios[0], ratios[-1], len(ratios)))
    if rows:
        out.append("")
        out.append("poolechod / %s, paired within each repetition (what poolechod adds to "
                   "the cost of a blocking thread per connection; 1.00: nothing):" % FLOOR)
        out.append("")
        out.append("| workload | median | range | pairs |")
        out.append("|---|---|---|---|")
        out.extend(rows)


def cpu_table(out, cells, servers, workloads):
    """Rates per busy second of the server's CPU, paired with the
    reference's: where the load client held a server back, its CPU was not
    full, and the rate it would reach with a faster client is estimated as
    its rate over how busy its CPU was."""
    def per_busy(s, w):
        return {r["rep"]: r["value"] / r["server_cpu_busy"]
                for r in cells.get((s, w), [])
                if r["ok"] and r["value"] and r.get("server_cpu_busy")}

    def busy_pct(s, w):
        b = [r["server_cpu_busy"] for r in cells.get((s, w), [])
             if r["ok"] and r.get("server_cpu_busy")]
        return "%.0f%%" % (100 * statistics.median(b)) if b else "-"

    rows, ref = [], REFERENCE
    for s in servers:
        row = [s]
        for w in workloads:
            mine, theirs = per_busy(s, w), per_busy(ref, w)
            ratios = sorted(mine[k] / theirs[k] for k in mine if k in theirs)
            if s == ref:
                row.append("1.00 (CPU %s)" % busy_pct(s, w) if theirs else "-")
            elif ratios:
                row.append("%.2f [%.2f-%.2f] (CPU %s)" % (statistics.median(ratios), ratios[0],
                                                          ratios[-1], busy_pct(s, w)))
            else:
                row.append("-")
        rows.append(row)
    if not any(c != "-" for row in rows for c in row[1:]):
        return
    out.append("")
    out.append("Rate per busy second of the server's CPU, over %s's in the same repetition "
               "(median [range]), with the median busy share of the server's CPU while the "
               "load ran (all but idle: softirq, steal and any other process on it)." % ref)
    out.append("An estimate, not a measurement: it assumes a rate grows with the CPU a server "
               "is given, up to a full CPU, and counts the loopback")
    out.append("work done on the server's CPU for the client's packets as the server's. Where "
               "%s's CPU was not full (the client held it back), this" % ref)
    out.append("ratio is nearer the truth than the one above; where both CPUs were full, "
               "the two agree.")
    out.append("")
    out.append("| " + " | ".join(["server"] + workloads) + " |")
    out.append("|" + "---|" * (len(workloads) + 1))
    for row in rows:
        out.append("| " + " | ".join(row) + " |")


def net_text(r):
    """'N listen overflows, M SYN retransmits' when either is not 0, else ''."""
    if not r.get("listen_overflows") and not r.get("syn_retrans"):
        return ""
    return "%d listen overflows, %d SYN retransmits" % (r.get("listen_overflows") or 0,
                                                        r.get("syn_retrans") or 0)


def net_note(out, runs):
    hit = [r for r in runs if net_text(r)]
    counted = [r for r in runs if r.get("listen_overflows") is not None]
    if hit:
        out.append("")
        out.append("Runs whose SYNs were dropped or sent again (%d of %d counted; a listen "
                   "overflow drops a SYN, and its client waits about a second to send it "
                   "again, so the run's figure is low):" % (len(hit), len(counted)))
        out.append("")
        for r in hit:
            out.append("- rep %d %s %s: %s" % (r["rep"], r["server"], r["workload"], net_text(r)))


def missing_note(out, cells, servers, workloads, reps):
    """Repetitions a server never ran (a run cut short by --max-time)."""
    missing = []
    for s in servers:
        for w in workloads:
            ran = {r["rep"] for r in cells.get((s, w), [])}
            if cells.get((s, w)) and len(ran) < reps:
                missing.append("%s %s: %d of %d" % (s, w, len(ran), reps))
    if missing:
        out.append("")
        out.append("Repetitions not run (the run was cut short): " + "; ".join(missing))


def busy_note(out, runs):
    busy = [r for r in runs if (r.get("busy_before_pct") or 0) >= 25]
    if busy:
        out.append("")
        out.append("Note: %d of %d runs started while the machine was already %s%% busy or more "
                   "(other jobs on the shared machine): their figures may be low." %
                   (len(busy), len(runs), 25))


def problem_list(out, runs):
    problems = [r for r in runs if not r["ok"]]
    if problems:
        out.append("")
        out.append("Runs left out (%d):" % len(problems))
        out.append("")
        for r in problems:
            out.append("- rep %d %s %s: %s" % (r["rep"], r["server"], r["workload"],
                                               "; ".join(r["problems"])[:300]))


def main():
    if len(sys.argv) < 2:
        die("usage: benchlib.py freeport|waitlisten|echocheck|quiet|netcount|sample|builds|"
            "record|table ...", 2)
    cmds = {"freeport": cmd_freeport, "waitlisten": cmd_waitlisten,
            "echocheck": cmd_echocheck, "quiet": cmd_quiet, "netcount": cmd_netcount,
            "sample": cmd_sample, "builds": cmd_builds,
            "record": cmd_record, "table": cmd_table}
    fn = cmds.get(sys.argv[1])
    if fn is None:
        die("unknown command %r" % sys.argv[1], 2)
    fn(sys.argv[2:])


if __name__ == "__main__":
    main()
