"""The fuzz corpus (tests/fuzz_corpus/<target>/, written by `python -m host_sim fuzz --corpus`) replayed
through the fuzz oracle (host_sim/fuzz/targets.py) on every runtime: each kept input and every past
crash must end in its parser's documented error or a result, on CPython and inside MicroPython, and
in the same outcome on both."""

import os

from host_sim.fuzz import targets

CORPUS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fuzz_corpus")
BATCH = 16


def body_replay(name, inputs):
    import sys

    from host_sim.fuzz import targets

    if name in targets.HOST_ONLY and sys.implementation.name == "micropython":
        return ["host only"] * len(inputs)
    return [targets.run(name, data) for data in inputs]


def corpus():
    """(target, [input, ...]) per target folder, files in name order."""
    out = []
    for name in sorted(os.listdir(CORPUS)):
        folder = os.path.join(CORPUS, name)
        inputs = []
        for file in sorted(os.listdir(folder)):
            with open(os.path.join(folder, file), "rb") as f:
                inputs.append(f.read())
        out.append((name, inputs))
    return out


def test_corpus_names_only_known_targets_and_is_small():
    total = 0
    for name, inputs in corpus():
        assert name in targets.TARGETS, name
        assert 0 < len(inputs) <= 250, (name, len(inputs))
        total += sum(len(d) for d in inputs)
    assert total < 512 * 1024


def test_every_target_has_a_corpus():
    assert sorted(name for name, _ in corpus()) == sorted(targets.TARGETS)


def test_corpus_replays_through_the_oracle(runtime):
    outcomes = []
    for name, inputs in corpus():  # one MicroPython process per target: a fresh 128k heap each
        batches = [(name, inputs[i:i + BATCH]) for i in range(0, len(inputs), BATCH)]
        got = [o for r in runtime.run_many(body_replay, batches) for o in r]
        assert len(got) == len(inputs), name
        if name not in targets.HOST_ONLY:  # the same outcome on every runtime as on this CPython
            assert got == [targets.run(name, data) for data in inputs], name
        outcomes += got
    assert all(isinstance(o, str) for o in outcomes)
    assert "ok" in outcomes and "TlvError" in outcomes  # the corpus reaches both sides of the parsers


