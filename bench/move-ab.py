#!/usr/bin/python3
"""move-ab.py WORKDIR: the CPU of MoveInstance with two (or more) coffer
binaries, alternating, on move-bench.py's instance (issue 12).

For a before/after comparison on a machine that is not quiet: the wall time
of one move says little there, its CPU more, and alternating the binaries
move by move exposes both to the same load. Uses move-bench.py's setup
(WORKDIR as for it: the instance holding corpus A is made once and kept)
and its side_move(), without the IMAP poller (whose logins would count in
the CPU), and its prepare_side() (COLD, PREFAULT_MB as for it). Before
each move the roles are restarted with the next binary
(BINS, comma-separated paths; the daemons run the binary that started
them). With PERF=PREFIX, `perf record -F 499 -g -p` of the Management
Server and both Instance Hosts during each move writes PREFIX.N (perf
report --sort pid,dso tells the threads apart).

  BINS   coffer binaries, comma-separated (default: COFFER_BIN)
  RUNS   moves per binary (default 3)
  PERF   perf.data prefix (default: none)
Run as root, like move-bench.py."""
import importlib.util
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
os.environ["POLL"] = "0"
spec = importlib.util.spec_from_file_location("move_bench", os.path.join(HERE, "move-bench.py"))
mb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mb)
from serverprocs import loadavg  # noqa: E402


def main():
    bins = [os.path.abspath(b) for b in os.environ.get("BINS", mb.COFFER).split(",")]
    runs = int(os.environ.get("RUNS", "3"))
    perf = os.environ.get("PERF")
    os.makedirs(mb.WORK, exist_ok=True)
    mb.setup(mb.prepare_corpus())
    cpu = {b: [] for b in bins}
    for i in range(runs * len(bins)):
        binary = bins[i % len(bins)]
        mb.COFFER = binary
        mb.start_all()
        mb.prepare_side()
        recorder = None
        if perf:
            roots = [mb.pid_of("coffer", "management-server"),
                     mb.pid_of("coffer", "instance-host"), mb.pid_of("ih2", "instance-host")]
            recorder = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o",
                                         "%s.%d" % (perf, i), "-p", ",".join(map(str, roots))],
                                        stderr=subprocess.DEVNULL)
            time.sleep(1)
        load = loadavg()
        r = mb.side_move()
        if recorder:
            recorder.send_signal(signal.SIGINT)
            recorder.wait()
        cpu[binary].append(r["cpu"])
        split = r["cpuSplit"]
        print("%s: move %s -> %s, CPU %.2f s (Management Server %.2f, source host %.2f, "
              "target host %.2f), wall %.2f s, load %s -> %s"
              % (binary, r["from"], r["to"], r["cpu"], split["management"], split["source"],
                 split["target"], r["wall"], load, loadavg()), flush=True)
    for binary in bins:
        print("%s: CPU per move %s, median %.2f s"
              % (binary, ", ".join("%.2f" % c for c in cpu[binary]),
                 statistics.median(cpu[binary])))
    mb.stop_all()


if __name__ == "__main__":
    main()
