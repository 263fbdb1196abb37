"""How soon does rnn-tui answer? Three figures, medians of interleaved rounds in one run:

1. `rnn-tui --help`: wall time of the whole process (goal: <= 0.5 s on a 2-core machine);
2. the app's first frame: from starting the process to the moment the terminal has received
   the screen (its panels' titles), read from a pseudo-terminal as a person's terminal would
   (goal: <= 1.0 s);
3. the first trained batch on screen: until the training panel shows a loss (the first
   batch's, published within 0.1 s of it and drawn within 0.2 s more).

Python's own start-up (`python -c pass`) is measured beside them: no command can beat it.
On a busy machine wall times stretch with the load; the CPU time the process had used by
then (from /proc, all its threads) is printed beside each, and is close to what the wall
time would be on a quiet machine until the training thread starts.
Each app run trains the book's model with the default settings, its run directory in a
temporary folder, and quits with q.

    python bench/startup.py [--rounds 5] [--checkout PATH ...] [--size 100x30]

--checkout runs the code of another checkout; given twice (e.g. an older one and this one),
the two are measured in alternation, round by round, for a before/after.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import resource
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENTRY = "import sys; from tui.cli import main; sys.exit(main())"
ESCAPES = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-B]|\x1b[=>78]")
FIRST_FRAME = re.compile(rb"Hyperparameters")  # a panel's title: the screen is there
FIRST_BATCH = re.compile(rb"loss\s+\d")          # the stats show a loss: a batch has trained


def command(*args: str) -> list[str]:
    """rnn-tui from the code of the folder it runs in (`-c` puts it first on sys.path)."""
    return [sys.executable, "-c", ENTRY, *args]


def wall_time(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of a whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=120)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_seconds(pid: int) -> float:
    """User and system time a running process has used so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def app_times(checkout: Path, env: dict, size: tuple[int, int],
              timeout: float = 120.0) -> tuple[tuple[float, float], tuple[float, float]]:
    """(wall, CPU) seconds from the start of the process to the first frame, and to the first
    batch on screen."""
    master, slave = pty.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    start = time.perf_counter()
    proc = subprocess.Popen(command(), cwd=checkout, env=env, stdin=slave, stdout=slave,
                            stderr=slave, start_new_session=True, close_fds=True)
    os.close(slave)
    seen, first_frame, first_batch = b"", None, None
    try:
        while first_batch is None and time.perf_counter() - start < timeout:
            ready, _, _ = select.select([master], [], [], 0.01)
            if not ready:
                continue
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # the process ended
                break
            now = time.perf_counter() - start
            seen += ESCAPES.sub(b"", chunk)
            if first_frame is None and FIRST_FRAME.search(seen):
                first_frame = now, cpu_seconds(proc.pid)
            if first_frame is not None and FIRST_BATCH.search(seen):
                first_batch = now, cpu_seconds(proc.pid)
        os.write(master, b"q")
        _drain_until_exit(proc, master)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        os.close(master)
    if first_frame is None or first_batch is None:
        raise RuntimeError(f"the app did not show {'a frame' if first_frame is None else 'a batch'} "
                           f"within {timeout:.0f} s; it wrote: {seen[-500:]!r}")
    return first_frame, first_batch


def _drain_until_exit(proc: subprocess.Popen, master: int, timeout: float = 60.0) -> None:
    """Keep reading the terminal (a full pty would block the app) until the app has quit."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                os.read(master, 1 << 16)
            except OSError:
                break
    proc.wait(timeout=max(1.0, deadline - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--checkout", type=Path, action="append",
                        help="a checkout whose code runs (default: this one); repeatable")
    parser.add_argument("--size", default="100x30", help="terminal size, COLSxROWS")
    args = parser.parse_args()
    size = tuple(int(n) for n in args.size.lower().split("x"))
    checkouts = [c.resolve() for c in args.checkout or [REPO]]
    print(f"{os.cpu_count()} cores · load average at the start {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        env.update(TERM="xterm-256color", XDG_DATA_HOME=f"{home}/data",
                   XDG_CONFIG_HOME=f"{home}/config", XDG_CACHE_HOME=f"{home}/cache")
        results: dict[Path, dict[str, list[tuple[float, float]]]] = {
            c: {"python -c pass": [], "rnn-tui --help": [], "first frame": [],
                "first batch on screen": []} for c in checkouts}
        for checkout in checkouts:
            wall_time(command("--version"), checkout, env)  # warm the file caches
        for i in range(args.rounds):
            for checkout in checkouts:
                r = results[checkout]
                r["python -c pass"].append(wall_time([sys.executable, "-c", "pass"], checkout, env))
                r["rnn-tui --help"].append(wall_time(command("--help"), checkout, env))
                frame, batch = app_times(checkout, env, size)
                r["first frame"].append(frame)
                r["first batch on screen"].append(batch)
                print(f"round {i + 1} {checkout.name}: "
                      + ", ".join(f"{k} {v[-1][0]:.3f} s" for k, v in r.items()), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    for checkout, r in results.items():
        print(f"\n{checkout}    seconds: wall median (min-max), CPU median")
        for name, values in r.items():
            wall = [w for w, _ in values]
            cpu = statistics.median(c for _, c in values)
            print(f"{name:24}{statistics.median(wall):8.3f} ({min(wall):.3f}-{max(wall):.3f})"
                  f"   CPU {cpu:.3f}")


if __name__ == "__main__":
    main()
