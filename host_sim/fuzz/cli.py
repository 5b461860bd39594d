"""`python -m host_sim fuzz`: every parser that takes outside input, fuzzed at scale on CPython.

Seeds come from golden vectors and the project's encoders (host_sim/fuzz/seeds.py), children from
structure-aware mutations (mutate.py), the verdict from the oracle shared with the MicroPython corpus
replay (targets.py).  With --corpus DIR the inputs already under DIR/<target>/ are seeds too, and the
run writes back a minimised corpus (at most --keep per target) plus every finding as crash-<sha1>.
Exit 1 when anything raised an exception its parser does not document.
"""

import argparse
import json
import os
import sys
import time

from host_sim.fuzz import atheris_engine, engine, targets

ENGINES = {
    "builtin": "builtin: structure-aware mutation, sampled line-edge coverage (sys.settrace)",
    "atheris": "atheris: libFuzzer coverage-guided, one process per target",
}


def _target(name):
    if name not in targets.TARGETS:
        raise argparse.ArgumentTypeError("unknown target %r (one of: %s)" % (name, ", ".join(targets.TARGETS)))
    return name


def _positive(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("%r is not a positive whole number" % text)
    return int(text)


def _folder(path):
    if os.path.exists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError("%s is a file, not a corpus folder" % path)
    return path


def add_arguments(parser):
    parser.add_argument("--inputs", type=_positive, default=20000,
                        help="mutated inputs in total, shared evenly by the targets (default 20000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (a run is repeatable)")
    parser.add_argument("--target", type=_target, action="append", metavar="NAME",
                        help="fuzz only this target (repeatable): " + ", ".join(targets.TARGETS))
    parser.add_argument("--corpus", metavar="DIR", type=_folder,
                        help="read seeds from DIR/<target>/ and write the kept corpus there")
    parser.add_argument("--engine", choices=("auto", "builtin", "atheris"), default="auto",
                        help="auto (default): atheris when it is installed, else the built-in mutator")
    parser.add_argument("--keep", type=_positive, default=200, help="corpus files per target at most (default 200)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")


def read_corpus(folder):
    """The inputs stored in a corpus folder (one binary file per input)."""
    out = []
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                out.append(f.read())
    return out


def write_corpus(folder, inputs, crashes):
    """Replace the corpus files in `folder` by `inputs`; crash files are added, never removed."""
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if not name.startswith("crash-"):
            os.remove(os.path.join(folder, name))
    for data in inputs:
        with open(os.path.join(folder, engine.digest(data)), "wb") as f:
            f.write(data)
    for data in crashes:
        with open(os.path.join(folder, "crash-" + engine.digest(data)), "wb") as f:
            f.write(data)


def main(args):
    chosen = args.engine
    if chosen == "auto":
        chosen = "atheris" if atheris_engine.available() else "builtin"
    elif chosen == "atheris" and not atheris_engine.available():
        print("fuzz: --engine atheris needs the atheris package (pip install -r requirements.txt)", file=sys.stderr)
        return 2
    run = atheris_engine.fuzz if chosen == "atheris" else engine.fuzz
    names = args.target or list(targets.TARGETS)
    share = max(1, args.inputs // len(names))
    started = time.monotonic()
    report = {}
    findings = 0
    total = 0
    for name in names:
        folder = os.path.join(args.corpus, name) if args.corpus else None
        extra = read_corpus(folder) if folder else []
        result = run(name, share, args.seed, extra)
        if folder:
            kept = engine.minimise(name, extra + result.kept, args.keep)
            write_corpus(folder, kept, result.crashes)
        report[name] = result.as_json()
        if folder:
            report[name]["corpus_written"] = len(kept)
        total += result.inputs
        findings += len(result.findings)
        if not args.json:
            print("%-10s %8d inputs %6.1f s  findings %d  kept %d  %s" % (
                name, result.inputs, result.seconds, len(result.findings), len(result.kept),
                json.dumps(result.errors_by_class, sort_keys=True)), file=sys.stderr)
        for hexdata, text in result.findings:
            print("FINDING %s: %s\n  input %s" % (name, text, hexdata), file=sys.stderr)
    seconds = time.monotonic() - started
    out = {"targets": report, "totals": {"inputs": total, "findings": findings, "seconds": round(seconds, 1),
                                         "inputs_per_s": round(total / seconds) if seconds else 0,
                                         "engine": ENGINES[chosen], "seed": args.seed}}
    print(json.dumps(out, indent=None if args.json else 2))
    return 1 if findings else 0
