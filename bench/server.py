"""Run the real service in a subprocess and load it with wrk, for HTTP benchmarks."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def served(home: Path, env: dict[str, str] | None = None, app: str = "api.asgi:app") -> Iterator[str]:
    """The app (an ASGI import path) served by uvicorn in a subprocess on a free port; yields its URL."""
    with serving(home, env, app) as (url, _):
        yield url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(home: Path, env: dict[str, str] | None = None, app: str = "api.asgi:app") -> Iterator[tuple[str, int]]:
    """`served`, yielding the server process's id too (for its CPU time)."""
    port = free_port()
    full_env = {**os.environ, "TRUSTSEAL_HOME": str(home), **(env or {})}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("service did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk(url: str, seconds: float, connections: int = 8, script: str | None = None) -> dict[str, float]:
    """Requests/s from wrk; refuses results with any non-2xx answer."""
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        if script:
            fh.write(script)
    if script:
        args += ["-s", fh.name]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True, timeout=seconds + 60).stdout
    os.unlink(fh.name)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise RuntimeError(f"{bad.group(1)} failed requests against {url}:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    return {"rps": rps, "requests": requests, "p50": p50.group(1) + p50.group(2) if p50 else "?"}  # type: ignore[dict-item]


def post_script(path: str, bodies: list[str], token: str) -> str:
    """A wrk Lua script that POSTs JSON bodies in rotation."""
    lines = ["local bodies = {"]
    lines += [f"  {json.dumps(b)}," for b in bodies]
    lines += [
        "}",
        "local i = 0",
        "request = function()",
        "  i = i % #bodies + 1",
        f'  return wrk.format("POST", "{path}", {{["Content-Type"] = "application/json", '
        f'["Authorization"] = "Bearer {token}"}}, bodies[i])',
        "end",
    ]
    return "\n".join(lines)
