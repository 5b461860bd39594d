"""The coverage-guided engine: each target under atheris in a child process (atheris_run.py), its
results read back into the same Result the built-in engine gives.  Used when atheris is installed."""

import json
import os
import re
import subprocess
import sys
import tempfile
import time

from host_sim import paths
from host_sim.fuzz import engine, seeds


def available():
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def _finding_text(log):
    """The exception line of atheris' "Uncaught Python exception" report, with where it was raised."""
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if "Uncaught Python exception" in line:
            tail = [x for x in lines[i + 1:] if x.strip()]
            error = next((x for x in tail if re.match(r"^\w+(Error|Exception|Exit)?\b.*:", x) and "File" not in x), "")
            where = [x.strip() for x in tail if x.strip().startswith("File ")]
            return "%s at %s" % (error.strip() or "exception", where[-1] if where else "?")
    return "crash (see the libFuzzer log)"


def fuzz(name, budget, seed=0, extra=(), deadline=None):
    result = engine.Result(name)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-%s-" % name) as work:
        corpus = os.path.join(work, "corpus")
        os.makedirs(corpus)
        os.makedirs(os.path.join(work, "crashes"))
        initial = set()
        for data in list(seeds.seeds(name)) + list(extra):
            initial.add(engine.digest(data))
            with open(os.path.join(corpus, engine.digest(data)), "wb") as f:
                f.write(data)
        env = dict(os.environ, PYTHONPATH=paths.ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        timeout = None if deadline is None else max(10.0, deadline - time.monotonic())
        proc = subprocess.run([sys.executable, "-m", "host_sim.fuzz.atheris_run", name, str(budget), str(seed), work],
                              cwd=paths.ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        log = proc.stderr + proc.stdout
        done = re.findall(r"Done (\d+) runs", log)
        try:
            with open(os.path.join(work, "counts.json")) as f:
                result.errors_by_class = json.load(f)
        except (OSError, ValueError):
            pass
        result.inputs = int(done[-1]) if done else sum(result.errors_by_class.values())
        for file in sorted(os.listdir(os.path.join(work, "crashes"))):
            with open(os.path.join(work, "crashes", file), "rb") as f:
                data = f.read()
            result.crashes.append(data)
            result.findings.append((data.hex(), _finding_text(log)))
        if proc.returncode and not result.findings:
            result.findings.append(("", "atheris exited %d: %s" % (proc.returncode, log.strip()[-300:])))
        for file in sorted(os.listdir(corpus)):
            if file not in initial:
                with open(os.path.join(corpus, file), "rb") as f:
                    result.kept.append(f.read())
    result.seconds = time.monotonic() - started
    return result
