"""The `runtime` fixture itself: bodies run on CPython and inside a MicroPython process alike."""

import hashlib
import inspect
import os
import subprocess
import sys
import textwrap

import pytest
import runtimes
from hypothesis import settings
from hypothesis import strategies as st
from runtimes import MicroPythonError, MicroPythonRuntime

from host_sim import micropython

HERE = os.path.abspath(__file__)


# --- bodies: module-level functions, plain code valid on both runtimes -----------------------------


def body_add(a, b):
    return a + b


def body_echo(*values):
    return values


def body_implementation():
    import sys

    return sys.implementation.name


def body_allocate(size, catch):
    if not catch:
        return len(bytearray(size))
    try:
        return len(bytearray(size))
    except MemoryError:
        return "MemoryError"


def body_fails(value):
    doubled = value * 2
    assert doubled == 5, (value, doubled)  # the line a MicroPython traceback must point at
    return doubled


def body_raises_value_error(text):
    return int(text)


def body_sys_path():
    import sys

    return [p for p in sys.path]


def body_import_from_repo():
    import hardware.boards

    return hardware.boards.__name__


def body_sha256(data):
    import hashlib

    return hashlib.sha256(data).digest()


def body_check_even(n):
    assert n % 2 == 0, n
    return n // 2


def body_prints(x):
    print("hello from the body", x)
    return x


@pytest.mark.skip  # decorators are stripped when the body is shipped
def body_decorated(x):
    return x + 1


def body_format_map():
    return "{a}".format_map({"a": 1})  # CPython only: MicroPython's str has no format_map


GLOBAL_CONSTANT = 7


def body_uses_global():
    return GLOBAL_CONSTANT


# --- the fixture --------------------------------------------------------------------------------------


def test_passing_body(runtime):
    assert runtime.run(body_add, 2, 3) == 5
    assert runtime.run(body_add, "ab", "cd") == "abcd"


def test_runs_on_the_named_runtime(runtime):
    expected = "micropython" if runtime.name in ("micropython", "board") else "cpython"
    assert runtime.run(body_implementation) == expected


ROUND_TRIP = [
    None,
    True,
    False,
    0,
    -1,
    2**100,
    -(2**70),
    1.5,
    "",
    "plain",
    "quotes ' \" and \\ backslash\nnew line\ttab\r\x00\x7f",
    "智付 \u200b \U0001f600 \x85 \u2028 end",
    b"",
    bytes(range(256)),
    (),
    (1,),
    ((1, 2), [3, (4,)]),
    [],
    [b"a", "b", None, [True, {}]],
    {},
    {"k": b"v", 1: (2, 3), b"raw": [None], (1, "t"): {"nested": {"deep": b"\xff"}}, None: False},
]


def test_round_trip(runtime):
    assert runtime.run(body_echo, *ROUND_TRIP) == tuple(ROUND_TRIP)


def test_bytearray_arrives_as_bytes(runtime):
    assert runtime.run(body_echo, bytearray(b"\x01\x02"), memoryview(b"mv")) == (b"\x01\x02", b"mv")


def test_unsupported_values_are_refused(runtime):
    with pytest.raises(TypeError):
        runtime.run(body_echo, {1, 2})
    with pytest.raises(TypeError):
        runtime.run(body_echo, object())


def test_decorators_are_stripped(runtime):
    assert runtime.run(body_decorated, 1) == 2


def test_body_prints_pass_through(runtime, capsys):
    assert runtime.run(body_prints, 4) == 4
    assert "hello from the body 4" in capsys.readouterr().out


def test_heap_is_a_small_boards(runtime):
    size = 200 * 1024
    if runtime.name == "cpython":
        assert runtime.run(body_allocate, size, True) == size
    else:
        assert runtime.run(body_allocate, size, True) == "MemoryError"
        with pytest.raises(MemoryError) as excinfo:
            runtime.run(body_allocate, size, False)
        assert isinstance(excinfo.value, MicroPythonError)
    # A few KB is fine everywhere.
    assert runtime.run(body_allocate, 4096, True) == 4096


def test_repo_root_is_on_the_path(runtime):
    if runtime.name == "micropython":
        path = runtime.run(body_sys_path)
        assert path[:2] == runtime.import_path()[:2]  # protocol/ and firmware/ compiled, then the repo
        assert path[1] == runtimes.ROOT
        assert "" not in path  # the current directory cannot shadow the repo's packages
    assert runtime.run(body_import_from_repo) == "hardware.boards"


def test_exception_type_is_kept(runtime):
    with pytest.raises(ValueError):
        runtime.run(body_raises_value_error, "not a number")


def test_failing_assertion_fails(runtime):
    with pytest.raises(AssertionError):
        runtime.run(body_fails, 3)


def test_micropython_subset_is_enforced(runtime):
    if runtime.name == "cpython":
        assert runtime.run(body_format_map) == "1"
    else:
        with pytest.raises(AttributeError, match="format_map"):
            runtime.run(body_format_map)


def test_module_globals_are_refused_on_every_runtime(runtime):
    with pytest.raises(TypeError, match="GLOBAL_CONSTANT"):
        runtime.run(body_uses_global)


def test_run_many(runtime):
    assert runtime.run_many(body_add, [(1, 2), (3, 4), ("a", "b")]) == [3, 7, "ab"]
    assert runtime.run_many(body_add, []) == []


def test_run_many_names_the_failing_example(runtime):
    with pytest.raises(AssertionError) as excinfo:
        runtime.run_many(body_check_even, [(2,), (4,), (7,), (8,)])
    if runtime.name == "micropython":
        assert "example 2 of the batch, body_check_even(7)" in str(excinfo.value)


def test_hypothesis_batch(runtime):
    """Generate on CPython, check the whole batch in one MicroPython process."""
    batch = runtimes.draw_examples(st.tuples(st.binary(max_size=300)))
    assert len(batch) > 10
    got = runtime.run_many(body_sha256, batch)
    assert got == [hashlib.sha256(data).digest() for (data,) in batch]


# --- the MicroPython runner, called directly --------------------------------------------------------


def test_micropython_failure_carries_its_traceback():
    runner = MicroPythonRuntime()
    with pytest.raises(AssertionError) as excinfo:
        runner.run(body_fails, 3)
    error = excinfo.value
    assert isinstance(error, MicroPythonError)
    assert error.remote_type == "AssertionError"
    message = str(error)
    assert "body_fails(3) raised AssertionError on MicroPython" in message
    assert "Traceback (most recent call last)" in message
    assert "AssertionError: (3, 6)" in message
    # The traceback points into this file, at the assert line of the body.
    lines, first = inspect.getsourcelines(body_fails)
    assert_line = first + next(i for i, line in enumerate(lines) if "assert doubled" in line)
    assert 'File "%s", line %d, in body_fails' % (HERE, assert_line) in message


def test_micropython_process_crash_is_reported():
    runner = MicroPythonRuntime(command="false")  # exits 1 at once, printing nothing
    with pytest.raises(MicroPythonError, match="did not finish running body_add \\(exit status 1"):
        runner.run(body_add, 1, 2)


def test_heap_option_is_honoured():
    assert MicroPythonRuntime(heap="512k").run(body_allocate, 200 * 1024, True) == 200 * 1024


def test_hypothesis_profile(fuzz_long):
    if fuzz_long:
        assert settings.default.max_examples == 20000
    else:
        assert settings.default.max_examples == 200
        assert settings.default.derandomize
    assert settings.default.deadline is None


# --- the plugin as pytest sees it ---------------------------------------------------------------------


SAMPLE_TESTS = """
import pytest


def body_ok(x):
    return x + 1


def body_bad(x):
    y = x + 1
    assert y == 100, y
    return y


def test_ok(runtime):
    assert runtime.run(body_ok, 1) == 2


def test_bad(runtime):
    runtime.run(body_bad, 1)


@pytest.mark.board
def test_on_board_marker():
    pass


def test_on_board_fixture(real_board):
    pass
"""


def run_pytest(tmp_path, *args):
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE_TESTS))
    env = dict(os.environ)
    tests_dir = os.path.dirname(HERE)
    env["PYTHONPATH"] = os.pathsep.join([tests_dir, runtimes.ROOT, env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "runtimes",
            "-p",
            "no:cacheprovider",
            "-rfs",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_sample.py"),
            *args,
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    return proc.stdout + proc.stderr


def test_plugin_reports_micropython_failure_and_skips_board_tests(tmp_path):
    out = run_pytest(tmp_path)
    assert "2 failed, 2 passed, 2 skipped" in out, out
    assert "FAILED test_sample.py::test_bad[micropython]" in out, out
    assert "FAILED test_sample.py::test_bad[cpython]" in out, out
    assert "body_bad(1) raised AssertionError on MicroPython" in out, out
    assert 'test_sample.py", line 11, in body_bad' in out, out
    assert "AssertionError: 2" in out, out
    assert "needs a real board: pass --port /dev/ttyUSB0" in out, out


def test_plugin_runtime_option(tmp_path):
    out = run_pytest(tmp_path, "--runtime", "micropython", "--collect-only", "-q")
    assert "test_ok[micropython]" in out and "test_ok[cpython]" not in out, out
    out = run_pytest(tmp_path, "--collect-only", "-q")
    assert "test_ok[cpython]" in out and "test_ok[micropython]" in out, out
    assert "[board]" not in out, out
    out = run_pytest(tmp_path, "--port", "/dev/null-board", "--collect-only", "-q")
    assert "test_ok[board]" in out, out
    out = run_pytest(tmp_path, "--runtime", "board")
    assert "--runtime board needs --port" in out, out


FAKE_MPREMOTE = """#!/bin/sh
# Stands in for `mpremote connect PORT [mount DIR] exec CODE`: runs CODE on the unix port instead.
[ "$1" = connect ] || exit 2
shift 2
dir=.frozen
if [ "$1" = mount ]; then dir="$2:.frozen"; shift 2; fi
[ "$1" = exec ] || exit 2
MICROPYPATH="$dir" exec "%s" -X heapsize=128k -c "$2"
"""


def test_board_runtime_through_mpremote(tmp_path):
    """The board runtime's script and chunking, with a stand-in for mpremote (no board here)."""
    fake = tmp_path / "mpremote"
    fake.write_text(FAKE_MPREMOTE % micropython.command())
    fake.chmod(0o755)
    board = runtimes.BoardRuntime("/dev/fake", mpremote=str(fake))
    board.chunk_chars = 40  # several mpremote calls for one batch
    assert board.run(body_implementation) == "micropython"
    assert board.run(body_echo, *ROUND_TRIP) == tuple(ROUND_TRIP)
    batch = [(bytes([i]) * i,) for i in range(30)]
    assert board.run_many(body_sha256, batch) == [hashlib.sha256(data).digest() for (data,) in batch]
    with pytest.raises(AssertionError) as excinfo:
        board.run_many(body_check_even, [(2,), (4,), (6,), (8,), (10,), (13,), (14,)])
    assert "example 5 of the batch, body_check_even(13)" in str(excinfo.value)
    assert "on the board" in str(excinfo.value)
    assert board.run_many(body_add, []) == []


@pytest.mark.parametrize("runtime", ["micropython"], indirect=True)
def test_a_test_may_pick_its_runtime(runtime):
    assert runtime.run(body_implementation) == "micropython"
