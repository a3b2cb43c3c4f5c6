#!/usr/bin/env python3
"""Runs a command and reports its wall time and peak memory (a benchmark helper).

  bench/track_memory.py COMMAND [ARGS...]

Samples /proc/PID/status every 50 ms: RssAnon (anonymous resident memory;
the pages of mapped files such as a checkpoint do not count) and VmRSS.
Prints one line: exit status, seconds, peak RssAnon and VmRSS in MiB.
bench/run.py measures every compile with it.
"""
import subprocess
import sys
import time


def track(cmd):
    """(exit status, seconds, peak RssAnon MiB, peak VmRSS MiB) of cmd."""
    t0 = time.time()
    proc = subprocess.Popen(cmd)
    peak = {"RssAnon:": 0, "VmRSS:": 0}
    status = "/proc/%d/status" % proc.pid
    while proc.poll() is None:
        try:
            with open(status) as f:
                for line in f:
                    key = line.split(":")[0] + ":"
                    if key in peak:
                        peak[key] = max(peak[key], int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.05)
    return (proc.returncode, time.time() - t0, peak["RssAnon:"] / 1024.0,
            peak["VmRSS:"] / 1024.0)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    try:
        rc, seconds, anon, rss = track(sys.argv[1:])
    except OSError as e:
        sys.exit("track_memory: cannot run %s: %s" % (sys.argv[1], e.strerror))
    print("rc %d, %.1f s, peak RssAnon %.0f MiB, peak VmRSS %.0f MiB"
          % (rc, seconds, anon, rss))
    sys.exit(rc)
