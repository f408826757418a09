"""Running one measured run of a benchmark in its own process (so that its peak memory is its own):
the child prints one line ``RESULT {json}``; anything else it prints is shown only if it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run_child(cmd: list[str], what: str, env: dict[str, str] | None = None) -> dict:
    """The child's RESULT object; a failed child's output is printed and the benchmark stops.
    ``env``: variables set for the child beside this process's."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{what} run failed")
    return json.loads(line[len("RESULT ") :])
