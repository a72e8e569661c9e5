"""Run a command and write its wall time, CPU and peak RSS, as JSON, to a file descriptor.

    python bench/launch.py FD COMMAND...

procstat.run_measured starts commands through this small process: a process forked from the
benchmark itself (several hundred MiB once it holds a workload) starts with the benchmark's
resident size as its own peak (Linux copies the parent's at fork, and exec keeps the larger),
so wait4 would report that, not what the command used. Forked from here, a command's peak is
its own. Run as a script, not a module: nothing of the benchmark is imported.
"""

import json
import os
import subprocess  # nosec B404 # the benchmark's own commands
import sys
import time


def main() -> int:
    fd, command = int(sys.argv[1]), sys.argv[2:]
    started = time.perf_counter()
    child = subprocess.Popen(command, pass_fds=())  # nosec B603 # stdio and environment inherited
    _, status, usage = os.wait4(child.pid, 0)
    figures = {
        "returncode": os.waitstatus_to_exitcode(status),
        "seconds": time.perf_counter() - started,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux: KiB
    }
    with os.fdopen(fd, "w") as out:
        json.dump(figures, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
