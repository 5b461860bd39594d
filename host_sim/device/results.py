"""What a device program reports to host_sim: timing statistics, the runtime's name and the one
"RESULT <json>" line that host_sim/micropython.py reads."""

import json
import sys


def stats(samples):
    """Median, 99th percentile and count of `samples` (microseconds); sorts them in place."""
    samples.sort()
    return {"median_us": samples[len(samples) // 2], "p99_us": samples[(len(samples) * 99) // 100],
            "n": len(samples)}


def runtime_name():
    """"micropython 1.29.0 linux": the VM a measurement ran on."""
    v = sys.implementation.version
    return "micropython %d.%d.%d %s" % (v[0], v[1], v[2], sys.platform)


def report(result):
    print("RESULT " + json.dumps(result))
