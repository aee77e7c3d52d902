"""Run one management command in a fresh process and report its time and peak memory.

``python -m bench.child <command> [args...]`` sets Django up (the parent passes the bench
environment), times only ``call_command`` (not interpreter start-up or Django's set-up), and prints
one JSON line: {"seconds": ..., "maxrss_mb": ...}. The parent also reads the child's peak RSS from
``os.wait4`` (see ``run_command``), which covers the whole process.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

from bench import common


def run_command(args: list[str], env: dict[str, str], label: str) -> dict:
    """Run ``manage.py``-style ``args`` in a child; return seconds, peak RSS (MB) and output."""
    log = common.logs_dir() / f"{label}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [common.PYTHON, "-m", "bench.child", *args],
            env=env,
            cwd=common.ROOT,
            stdout=subprocess.PIPE,
            stderr=out,
            start_new_session=True,
        )
        try:
            stdout = proc.stdout.read()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            common.stop_process_group(proc)
    lines = [ln for ln in stdout.decode().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{' '.join(args)} failed (exit {proc.returncode}); see {log}:\n"
            + log.read_text()[-3000:]
        )
    result = json.loads(lines[-1])
    result["wait4_maxrss_mb"] = usage.ru_maxrss / 1024
    result["stdout"] = stdout.decode()
    return result


def main() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    args = sys.argv[1:]
    start = time.perf_counter()
    call_command(*args, stdout=sys.stderr)
    seconds = time.perf_counter() - start
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sys.stdout.write(json.dumps({"seconds": seconds, "maxrss_mb": maxrss}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
