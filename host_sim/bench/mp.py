"""Runs a benchmark script inside the MicroPython unix port (the virtual board's VM) and returns what
it reported: the script prints one line "RESULT <json>".  `STATS` is a helper the script may paste in."""

import json
import os
import subprocess

from host_sim.paths import ROOT
from host_sim.tools import vboard

STATS = """
def stats(samples):
    samples.sort()
    return {"median_us": samples[len(samples) // 2], "p99_us": samples[(len(samples) * 99) // 100],
            "n": len(samples)}
def runtime_name():
    import sys
    v = sys.implementation.version
    return "micropython %d.%d.%d %s" % (v[0], v[1], v[2], sys.platform)
"""


def run(script, heap):
    env = dict(os.environ, MICROPYPATH=ROOT)
    proc = subprocess.run([vboard.micropython_command(), "-X", "heapsize=" + heap, "-c", STATS + script],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit("micropython failed:\n" + proc.stdout + proc.stderr)
    return json.loads(lines[-1][7:])
