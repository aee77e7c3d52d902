"""Run every benchmark (``make bench``) and print one table.

    .venv/bin/python -m bench.run_all [--size small|medium|full] [--only ingest,statistics,...]

Each benchmark runs in its own process (its own database and environment). The exit code is the
worst of theirs: 1 when a figure is wrong, 2 when a target is missed and targets are enforced
(by default only at --size full), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import common

BENCHMARKS = ["ingest", "statistics", "incentives", "admin_pages", "freshness"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(common.SIZES), default="small")
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(BENCHMARKS))
    parser.add_argument("--enforce-targets", action=argparse.BooleanOptionalAction, default=None)
    args, passthrough = parser.parse_known_args(argv)
    names = args.only.split(",") if args.only else BENCHMARKS
    rows: list[common.Row] = []
    codes: dict[str, int] = {}
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            cmd = [common.PYTHON, "-m", f"bench.{name}", "--size", args.size, "--json", str(out)]
            if args.enforce_targets is not None:
                cmd.append("--enforce-targets" if args.enforce_targets else "--no-enforce-targets")
            print(f"=== bench.{name} ({args.size})", flush=True)
            codes[name] = subprocess.run([*cmd, *passthrough], cwd=common.ROOT).returncode
            if out.exists():
                data = json.loads(out.read_text())
                rows.extend(common.Row(**r) for r in data["rows"])
                errors.extend(f"{name}: {e}" for e in data["errors"])
            else:
                errors.append(f"{name}: crashed (exit {codes[name]}), no results")
                codes[name] = 1
    print(f"\n=== all benchmarks ({args.size}, {common.os.cpu_count()} cores)")
    common.print_table(rows)
    for error in errors:
        print(f"WRONG: {error}", file=sys.stderr)
    print("exit codes: " + ", ".join(f"{n}={c}" for n, c in codes.items()))
    return 1 if 1 in codes.values() else max(codes.values(), default=0)


if __name__ == "__main__":
    sys.exit(main())
