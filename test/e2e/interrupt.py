"""Interrupts a running llmc executable with SIGINT (Ctrl-C) and checks that
it stops cleanly: exit status 130, one line on stderr, its output so far
flushed.

    interrupt.py (--after-output | --after SECONDS) STDOUT STDERR -- CMD...

--after-output waits for the first byte of CMD's output (a generation's
prompt echo) and 50 ms more, --after waits a fixed time (a bench or a perplexity run that
prints nothing until the end). The process is stopped (SIGSTOP), sent
SIGINT, and continued, so the signal lands while it is in its loop. CMD's
stdout and stderr go to the two files; exit 0 when CMD exited 130."""
import os
import signal
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    split = args.index("--")
    opts, cmd = args[:split], args[split + 1:]
    if opts[0] == "--after-output":
        wait, out_path, err_path = None, opts[1], opts[2]
    else:
        wait, out_path, err_path = float(opts[1]), opts[2], opts[3]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = b""
    if wait is None:
        # Unbuffered: communicate() below reads the rest from the same pipe.
        first = os.read(p.stdout.fileno(), 1)
        time.sleep(0.05)  # a few tokens into the loop
    else:
        time.sleep(wait)
    if p.poll() is not None:
        print("FAIL: the command ended (status %d) before it was interrupted"
              % p.returncode)
        return 1
    p.send_signal(signal.SIGSTOP)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGCONT)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        print("FAIL: still running 30 s after SIGINT")
        return 1
    open(out_path, "wb").write(first + out)
    open(err_path, "wb").write(err)
    if p.returncode != 130:
        print("FAIL: exit status %d, expected 130" % p.returncode)
        return 1
    print("ok: exit status 130")
    return 0


if __name__ == "__main__":
    sys.exit(main())
