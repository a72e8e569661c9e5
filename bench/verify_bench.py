"""POST /v1/verify throughput for cached numbers, one worker, against GET /healthz in the same run.

    .venv/bin/python bench/verify_bench.py [--database sqlite|postgresql] [--seconds 10]

The baseline, /healthz, is the same server answering with no work at all: the ratio says how
much of the framework's ceiling a real decision keeps. Load comes from wrk (Debian package wrk)
on the other core.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import httpx

from bench._common import cli, database_url, drop_database, served

_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
wrk.body = '{body}'
"""


def wrk(url: str, seconds: int, script: Path | None = None) -> float:
    command = ["wrk", "-t1", "-c32", f"-d{seconds}s", url]
    if script is not None:
        command[1:1] = ["-s", str(script)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if match is None or "Non-2xx" in out:
        raise SystemExit(f"wrk run failed:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = database_url(args.database, work)
        env = {"CERTCHECK_DATABASE_URL": url}
        try:
            cli(env, "db", "upgrade")
            cli(env, "demo-registry", str(work / "r.csv"), "--count", "10000")
            cli(env, "import", str(work / "r.csv"))
            key = cli(env, "keys", "create", "--platform", "bench", "--scope", "verify").strip()
            with served(env, work) as server:
                first = httpx.get(
                    f"{server.base}/v1/registry", headers={"Authorization": f"Bearer {key}"}
                )
                year = int(first.json()["as_of"][:4]) - 1
                body = json.dumps({"cert_no": f"{year}010901234567", "model": "XK-200"})
                script = work / "verify.lua"
                script.write_text(_LUA.format(key=key, body=body))
                wrk(f"{server.base}/v1/verify", 2, script)  # warm the cache and the code
                baseline = wrk(f"{server.base}/healthz", args.seconds)
                verify = wrk(f"{server.base}/v1/verify", args.seconds, script)
        finally:
            drop_database(url)
    print(f"database: {args.database}")
    print(f"GET /healthz (baseline): {baseline:,.0f} req/s")
    print(f"POST /v1/verify (cached): {verify:,.0f} req/s")
    print(f"ratio verify/healthz: {verify / baseline:.2f}")


if __name__ == "__main__":
    main()
