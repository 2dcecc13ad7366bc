"""How many of the machine's cores are busy, second by second, while a command runs.

    .venv/bin/python bench/cores_busy.py .venv/bin/python notebooks/run.py -p output_dir /tmp/out

Reads the whole machine's CPU counters in /proc/stat (Linux), so other work shows up too: run it
on a quiet machine. Prints one line per second (cores busy, 0 to the number of cores), then the
command's own output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def busy_and_total() -> tuple[int, int]:
    """The machine's busy and total CPU time so far, in clock ticks (the first line of /proc/stat:
    user nice system idle iowait irq softirq ...)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:8]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def main(command: list[str]) -> int:
    if not command:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    before, second = busy_and_total(), 0
    while process.poll() is None:
        time.sleep(1)
        second += 1
        now = busy_and_total()
        busy, total = now[0] - before[0], now[1] - before[1]
        print(f"{second:4d} s  {cores * busy / max(total, 1):.2f} cores busy", flush=True)
        before = now
    print(process.stdout.read(), end="")
    return process.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
