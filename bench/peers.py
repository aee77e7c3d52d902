"""Peers the benchmarks compare against, run from a throwaway venv (never the portal's).

The venv lives in /tmp/portal-bench-peer (override: BENCH_PEER_VENV) and is built from
bench/requirements.txt with pip on first use.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from bench import common

VENV = Path(os.environ.get("BENCH_PEER_VENV", "/tmp/portal-bench-peer"))
REQUIREMENTS = common.ROOT / "bench" / "requirements.txt"


def peer_python() -> str:
    """The peer venv's python, creating and filling the venv when its requirements changed."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".bench-requirements"
    wanted = REQUIREMENTS.read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
        )
        stamp.write_text(wanted)
    return str(python)


def pandas_statistics(database_url: str, month_from: str, month_to: str) -> dict:
    """Run the pandas peer over the counted receipts; returns seconds and monthly figures."""
    result = subprocess.run(
        [
            peer_python(),
            str(common.ROOT / "bench" / "peer_pandas.py"),
            database_url,
            month_from,
            month_to,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
