"""The fuzz loop for one target: mutate a corpus entry, run it through the oracle, keep what is new.

Coverage is sampled: every input whose outcome class is new, and one input in SAMPLE, runs again
under sys.settrace recording line-to-line edges in protocol/ and firmware/; an input that reaches an
edge not seen before joins the corpus.  Tracing everything would cost ~10x; sampling keeps the loop
near the untraced speed and still steers it.  An exception the target does not document is a finding.
"""

import hashlib
import os
import random
import sys
import time
import traceback

from host_sim import paths
from host_sim.fuzz import mutate, seeds, targets

SAMPLE = 16
MAX_CORPUS = 2000  # in memory, per target
WATCHED = (os.path.join(paths.ROOT, "protocol") + os.sep, os.path.join(paths.ROOT, "firmware") + os.sep)


def digest(data):
    return hashlib.sha1(bytes(data)).hexdigest()[:16]


class Coverage:
    """Edges (file, previous line, line) seen in the watched directories."""

    def __init__(self):
        self.edges = set()
        self._new = 0
        self._last = {}

    def _local(self, frame, event, arg):
        if event == "line":
            code = frame.f_code
            key = (code.co_filename, self._last.get(frame, 0), frame.f_lineno)
            self._last[frame] = frame.f_lineno
            if key not in self.edges:
                self.edges.add(key)
                self._new += 1
        return self._local

    def _global(self, frame, event, arg):
        if frame.f_code.co_filename.startswith(WATCHED):
            return self._local
        return None

    def run(self, name, data):
        """Run the target traced; how many new edges it reached (0 when it raised)."""
        self._new = 0
        self._last = {}
        sys.settrace(self._global)
        try:
            targets.run(name, data)
        except Exception:
            pass
        finally:
            sys.settrace(None)
            self._last = {}
        return self._new


class Result:
    def __init__(self, name):
        self.name = name
        self.inputs = 0
        self.errors_by_class = {}
        self.findings = []  # (hex of input, one-line description)
        self.kept = []  # inputs that reached new coverage or a new outcome
        self.crashes = []
        self.seconds = 0.0

    def as_json(self):
        return {"inputs": self.inputs, "errors_by_class": dict(sorted(self.errors_by_class.items())),
                "findings": len(self.findings), "corpus_kept": len(self.kept), "seconds": round(self.seconds, 2),
                "finding_inputs": [{"input": h, "error": e} for h, e in self.findings[:10]]}


def describe(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    where = tb[-1] if tb else None
    at = "%s:%d" % (os.path.relpath(where.filename, paths.ROOT), where.lineno) if where else "?"
    return "%s: %s at %s" % (type(exc).__name__, str(exc)[:120], at)


def fuzz(name, budget, seed=0, extra=(), deadline=None):
    """Run `budget` mutated inputs (after the seeds and `extra`) on target `name`; a Result."""
    rng = random.Random("%s/%d" % (name, seed))
    words = seeds.dictionary(name)
    cov = Coverage()
    result = Result(name)
    corpus = []
    outcomes = set()
    seen_findings = set()
    started = time.monotonic()

    def one(data, parent_new):
        result.inputs += 1
        try:
            outcome = targets.run(name, data)
        except Exception as e:  # noqa: BLE001 - every undocumented exception is what we look for
            text = describe(e)
            key = text.split(" at ")[-1] + type(e).__name__
            if key not in seen_findings:
                seen_findings.add(key)
                result.findings.append((bytes(data).hex(), text))
                result.crashes.append(bytes(data))
            outcome = "finding"
        result.errors_by_class[outcome] = result.errors_by_class.get(outcome, 0) + 1
        fresh = outcome not in outcomes
        outcomes.add(outcome)
        if parent_new or fresh or result.inputs % SAMPLE == 0:
            if cov.run(name, data) or fresh or parent_new:
                if len(corpus) < MAX_CORPUS:
                    corpus.append(bytes(data))
                result.kept.append(bytes(data))

    for data in list(seeds.seeds(name)) + list(extra):
        one(data, True)
    if not corpus:
        corpus.append(b"")
    for _ in range(budget):
        parent = corpus[-1 - int(rng.random() ** 2 * len(corpus))]  # newer entries a little more often
        one(mutate.mutate(rng, name, parent, corpus, words), False)
        if deadline is not None and time.monotonic() > deadline:
            break
    result.seconds = time.monotonic() - started
    return result


def minimise(name, kept, limit):
    """A small corpus with the same edges: shortest inputs first, each kept only if it adds edges."""
    cov = Coverage()
    out = []
    for data in sorted(set(kept), key=lambda d: (len(d), d)):
        if cov.run(name, data) and len(out) < limit:
            out.append(data)
    return out
