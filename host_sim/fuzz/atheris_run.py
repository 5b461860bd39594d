"""One target under atheris (libFuzzer's coverage-guided engine), in a process of its own: atheris can
set up only once per process and ends it when done.  The parent (cli.py, --engine atheris) reads back
counts.json, libFuzzer's "Done N runs" line, and the crash-* files in WORKDIR/crashes.

    python -m host_sim.fuzz.atheris_run TARGET RUNS SEED WORKDIR   (WORKDIR/corpus holds the seeds)
"""

import json
import os
import sys

import atheris

EVERY = 4096


def main(name, runs, seed, workdir):
    corpus = os.path.join(workdir, "corpus")
    with atheris.instrument_imports(include=["protocol", "firmware"]):
        from host_sim.fuzz import targets

        for file in sorted(os.listdir(corpus)):  # the targets import their parsers on first use
            with open(os.path.join(corpus, file), "rb") as f:
                try:
                    targets.run(name, f.read())
                except Exception:  # noqa: BLE001 - a seed that crashes is found again below
                    pass
    counts = {}
    done = [0]

    def dump():
        with open(os.path.join(workdir, "counts.json"), "w") as f:
            json.dump(counts, f)

    def one(data):
        done[0] += 1
        try:
            outcome = targets.run(name, data)
        except Exception:
            counts["finding"] = counts.get("finding", 0) + 1
            dump()
            raise
        counts[outcome] = counts.get(outcome, 0) + 1
        if done[0] % EVERY == 0 or done[0] >= runs:
            dump()

    crashes = os.path.join(workdir, "crashes") + os.sep
    atheris.Setup([sys.argv[0], "-runs=%d" % runs, "-seed=%d" % (seed + 1), "-max_len=4096",
                   "-artifact_prefix=" + crashes, "-print_final_stats=1", corpus], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
