"""`python -m host_sim bench uplink-memory --json` on MicroPython: every frame of every transport is delivered
and acknowledged, and the terminal's heap is flat over the frames (nothing kept per frame sent or received)."""

import json
import subprocess
import sys

from host_sim.tools import build

FRAMES = 1000


def test_the_heap_stays_flat_over_a_thousand_frames_per_transport():
    out = subprocess.run([sys.executable, "-m", "host_sim", "bench", "uplink-memory", "--json", "--frames",
                          str(FRAMES)], cwd=build.ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["runtime"].startswith("micropython 1.")
    for transport in ("serial", "simcom", "quectel"):
        r = got[transport]
        assert r["frames"] == FRAMES and r["frames_received"] == FRAMES, r
        assert r["alloc_per_frame_sent"] > 0 and r["alloc_per_frame_received"] > 0, r
        assert abs(r["heap_after"] - r["heap_warm"]) <= 256, r
