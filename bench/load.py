"""Load generators, each run as a child process so its CPU is measured: wrk for closed-loop
throughput, bench.openloop for latency at a fixed rate, bench.batchload for batches."""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench._common import BenchError, python_env
from bench.procstat import Finished, run_measured

# wrk sends the lines of the file given after `--` as bodies, one per request, in turn from a
# random start, so a run does not always begin with the same numbers.
_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  i = math.random(#bodies)
end
function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True, slots=True)
class Load:
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    cpu_cores: float  # the generator's own CPU
    detail: dict[str, float]


def need_wrk() -> None:
    if shutil.which("wrk") is None:
        raise BenchError("this scenario needs wrk: apt-get install wrk (Debian package wrk)")


def wrk(
    url: str,
    bodies: Path,
    workdir: Path,
    *,
    seconds: float,
    connections: int,
    headers: dict[str, str],
) -> Load:
    """Closed loop: `connections` connections, each sending its next request on an answer."""
    need_wrk()
    script = workdir / "bodies.lua"
    script.write_text(_LUA)
    command = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    done = run_measured([*command, "-s", str(script), url, "--", str(bodies)])
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if (
        done.returncode != 0
        or rate is None
        or "Non-2xx" in out
        or (errors is not None and sum(map(int, errors.groups()[:3])) > 0)
    ):
        raise BenchError(f"wrk failed against {url}:\n{out}{done.stderr}")
    return Load(
        float(rate.group(1)),
        _percentile(out, "50%"),
        _percentile(out, "99%"),
        done.cpu_cores,
        {"timeouts": float(errors.group(4)) if errors else 0.0},
    )


def _percentile(out: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else 0.0


def open_loop(
    url: str, bodies: Path, *, rate: float, seconds: float, headers: dict[str, str]
) -> Load:
    command = [sys.executable, "-m", "bench.openloop", "--url", url, "--rate", f"{rate:.1f}"]
    command += ["--seconds", str(seconds), "--bodies", str(bodies)]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    result = _json(run_measured(command, python_env({})), url)
    if result["errors"]:
        raise BenchError(f"open-loop run against {url}: {result}")
    cpu = result["cpu_cores"]
    return Load(result["achieved_rate"], result["p50_ms"], result["p99_ms"], cpu, result)


def batch_load(url: str, bodies: Path, *, requests: int, headers: dict[str, str]) -> Load:
    """`requests` batches over two connections; the rate is in items per second."""
    command = [sys.executable, "-m", "bench.batchload", "--url", url, "--bodies", str(bodies)]
    command += ["--requests", str(requests)]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    done = run_measured(command, python_env({}))
    result = _json(done, url)
    items_per_second = result["items"] / result["seconds"]
    return Load(items_per_second, result["p50_ms"], result["p99_ms"], done.cpu_cores, result)


def _json(done: Finished, url: str) -> dict[str, float]:
    if done.returncode != 0:
        raise BenchError(f"load generator against {url} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout)
    result["cpu_cores"] = done.cpu_cores
    return result
