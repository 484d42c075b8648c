"""serverprocs: what a benchmark reads about a side's server processes from /proc
(bench/fetch-bench.py, bench/login-bench.py).

A side is the process trees under its root pids (Coffer: the pid files of its
roles, the instance processes being the Instance Host's children; Dovecot: its
master). CPU time is utime+stime+cutime+cstime of /proc/PID/stat, so children
reaped meanwhile count; peak RSS is VmHWM of /proc/PID/status, reset with
clear_refs "5" (proc(5))."""
import os

TICK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(ppid, ticks of utime+stime+cutime+cstime, command), None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    # fields[0] is state (stat field 3): utime..cstime are stat fields 14-17
    return int(fields[1]), sum(int(v) for v in fields[11:15]), comm


def process_name(pid, comm):
    """"instance-host", "imap-login": the role or program, for the report."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        return comm
    if os.path.basename(args[0].decode(errors="replace")) == "coffer" and len(args) > 1:
        return args[1].decode(errors="replace")
    return comm


def process_tree(roots):
    """The roots and all their descendants, {pid: name}."""
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None:
                parents[int(name)] = (st[0], st[2])
    tree = {pid: process_name(pid, parents[pid][1]) for pid in roots if pid in parents}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, comm) in parents.items():
            if ppid in tree and pid not in tree:
                tree[pid] = process_name(pid, comm)
                grew = True
    return tree


def status_kib(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_ticks(pids):
    out = {}
    for pid in pids:
        st = proc_stat(pid)
        if st is not None:
            out[pid] = st[1]
    return out


def reset_peaks(pids):
    for pid in pids:
        try:
            with open("/proc/%d/clear_refs" % pid, "w") as f:
                f.write("5")  # VmHWM := VmRSS (proc(5))
        except OSError:
            pass


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])




def cpu_seconds(before, after):
    """CPU seconds spent between two cpu_ticks() readings of one side. A
    process new since the first counts from zero. A process gone since the
    first (an instance process stopped by a move) counts its whole life in
    its parent's cutime and cstime once its parent has reaped it, so its
    ticks at the first reading are taken off: adding up only the processes
    of the second reading counted an instance's work before the move (its
    start, a GetInstanceStatistics) as the move's. The daemons reap their
    children."""
    return (sum(after.values()) - sum(before.values())) / TICK


def pss_kib(pids):
    """Summed proportional set size: a library's pages shared by N processes
    count 1/N in each (RSS counts them whole in every one)."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total
