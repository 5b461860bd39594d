"""`python -m host_sim bench console [--rounds N] --json`: the technician console on a virtual board.

A virtual board is given a config authority's public keys (mpremote, before it is locked), a technician key
is issued for it (`bundle techkey`), and the console client (host_sim/tools/console.py) logs in and runs
`status` and `log 20` N times: host-clock times of the login (certificate check, challenge, RSA response
check on the terminal) and of each command's reply, medians and worst.  The terminal takes no taps here;
the log lines the logins wrote are counted back from `status`.
"""

import json
import os
import statistics
import tempfile
import time

from host_sim.tools import bundle, provision, vboard
from host_sim.tools import console as client


def _mpremote(port, *args):
    import subprocess

    from host_sim.tools import flash

    subprocess.run([flash.mpremote_exe(), "connect", port, *args], check=True, capture_output=True, timeout=60)


def run(args):
    with tempfile.TemporaryDirectory() as work:
        authority = os.path.join(work, "authority.pem")
        bundle.keygen(authority, 1)
        tech = os.path.join(work, "bench.tech")
        bundle.techkey(authority, "bench", "technician", 1, tech)
        key, cert = bundle.load_techkey(tech)
        board = vboard.VirtualBoard(os.path.join(work, "flash.img")).start()
        try:
            board.wait_console(b"ready:", timeout=30)
            port = board.ports["console"]
            _mpremote(port, "fs", "cp", authority + ".pub", ":/flash/keys/config")  # /flash/keys holds the factory key
            mark = board.console_mark()
            provision.soft_reset(port)  # Ctrl-D at the REPL mpremote left: the terminal starts again
            board.wait_console(b"ready:", timeout=30, since=mark)
            logins, status, logs = [], [], []
            session = client.Session(port)
            try:
                session.settle()
                for _ in range(args.rounds):
                    t0 = time.perf_counter()
                    session.login(key, cert)
                    logins.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    ok, _, data = session.command("status")
                    status.append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    session.command("log 20")
                    logs.append((time.perf_counter() - t0) * 1000)
                    session.command("logout")
                last = json.loads(data[0]) if ok and data else {}
            finally:
                session.close()
        finally:
            board.stop()

    def summary(values):
        return {"median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1)}

    return {"rounds": args.rounds, "login": summary(logins), "status": summary(status), "log_20": summary(logs),
            "heap_free_after": last.get("heap_free"), "log": last.get("log")}


def add_arguments(parser):
    parser.add_argument("--rounds", type=int, default=10, help="logins, each with a status and a log 20")
