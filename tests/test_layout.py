"""The import rules of DESIGN.md, checked on the source: who may import whom, what device code may
use at all (modules that exist on MicroPython), and that programs run inside MicroPython are files."""

import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What MicroPython ports offer (plus our own packages and the board seam).
DEVICE_MODULES = {
    "asyncio", "binascii", "cryptolib", "errno", "gc", "hashlib", "io", "json", "machine", "micropython",
    "os", "random", "select", "struct", "sys", "time", "termios", "esp32", "rp2", "network", "socket",
    "framebuf", "collections", "deflate", "vfs", "umachine", "builtins", "utime",
}
OURS = {"firmware", "protocol", "host_sim", "hardware", "board", "tests"}


DEVICE_PROGRAMS = "host_sim/device"  # programs host_sim runs inside MicroPython, by path
FUZZER = "host_sim/fuzz/"  # drives the device parsers in-process on CPython, as tests do (millions of inputs)


def python_files(package, exclude=()):
    skip = [os.path.join(ROOT, d) for d in exclude]
    for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
        if any(dirpath == d or dirpath.startswith(d + os.sep) for d in skip):
            continue
        for name in files:
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def _fallback_imports(tree):
    """Nodes inside `except ImportError:` handlers: the CPython fallback of a device module (e.g.
    cryptolib -> cryptography in protocol/crypto.py), which a device never executes."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Name) and node.type.id == "ImportError":
            for stmt in node.body:
                out.update(id(n) for n in ast.walk(stmt))
    return out


def _imports(path):
    """Every absolute import statement of the file, CPython fallbacks left out."""
    tree = ast.parse(open(path).read(), path)
    fallback = _fallback_imports(tree)
    for node in ast.walk(tree):
        if id(node) in fallback:
            continue
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
            yield node


def imported_top_modules(path):
    for node in _imports(path):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        else:
            yield node.module.split(".")[0], node.lineno


def imported_names(path):
    """Dotted names the file imports: `from a.b import c` is a.b.c (c may be a module)."""
    for node in _imports(path):
        for alias in node.names:
            yield alias.name if isinstance(node, ast.Import) else node.module + "." + alias.name


def violations(package, allowed, exclude=()):
    out = []
    for path in python_files(package, exclude):
        for module, line in imported_top_modules(path):
            if module not in allowed:
                out.append("%s:%d imports %s" % (os.path.relpath(path, ROOT), line, module))
    return out


# %-format placeholders (%r, %d, %(name)s, ...) of a program template, so that it parses as Python.
_PLACEHOLDER = re.compile(r"%(\([A-Za-z_]\w*\))?[-#0 +]*\d*(\.\d+)?[rsdiuxXfeEgGc]")


def _is_program(text):
    """A string of 2+ lines that is Python (once placeholders are filled) with an import statement."""
    if text.strip().count("\n") < 1:
        return False
    try:
        tree = ast.parse(_PLACEHOLDER.sub("0", text.replace("%%", "%")))
    except SyntaxError:
        return False
    return any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(tree))


def programs_in_strings(package, exclude=()):
    """Python programs held in string constants (multi-line, with an import): they belong in files."""
    out = []
    for path in python_files(package, exclude):
        tree = ast.parse(open(path).read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _is_program(node.value):
                out.append("%s:%d" % (os.path.relpath(path, ROOT), node.lineno))
    return out


def cpython_fallback(violation):
    """The one CPython fallback protocol/ has: crypto.py's AES-ECB from `cryptography` without cryptolib."""
    return violation.startswith("protocol/crypto.py:") and violation.endswith(" imports cryptography")


def test_protocol_imports_nothing_of_ours_and_only_device_modules():
    found = violations("protocol", (DEVICE_MODULES - {"machine", "termios"}) | {"protocol"})
    assert [v for v in found if not cpython_fallback(v)] == []


def test_firmware_imports_only_protocol_the_board_and_device_modules():
    assert violations("firmware", DEVICE_MODULES | {"firmware", "protocol", "board"}) == []


def board_modules():
    """The modules in hardware/boards/: a board may import the shared ones beside it (machine_board)."""
    return {name[:-3] for name in os.listdir(os.path.join(ROOT, "hardware", "boards")) if name.endswith(".py")}


def test_boards_import_only_device_modules_and_each_other():
    assert violations("hardware/boards", DEVICE_MODULES | board_modules()) == []


def test_device_programs_import_only_protocol_firmware_the_board_their_package_and_device_modules():
    assert violations(DEVICE_PROGRAMS, DEVICE_MODULES | {"firmware", "protocol", "board", "host_sim"}) == []
    outside = [(path, name) for path in python_files(DEVICE_PROGRAMS) for name in imported_names(path)
               if name.split(".")[0] == "host_sim" and not name.startswith("host_sim.device.")]
    assert outside == []


def test_host_sim_never_imports_firmware_boards_or_its_device_programs():
    bad = [v for v in violations("host_sim", set(), exclude=[DEVICE_PROGRAMS])
           if v.split(" imports ")[1] in ("firmware", "hardware", "board")
           and not (v.startswith(FUZZER) and v.endswith(" imports firmware"))]
    assert bad == []
    device = [(path, name) for path in python_files("host_sim", exclude=[DEVICE_PROGRAMS])
              for name in imported_names(path) if (name + ".").startswith("host_sim.device.")]
    assert device == []


def test_host_sim_holds_no_micropython_program_in_a_string():
    assert programs_in_strings("host_sim", exclude=[DEVICE_PROGRAMS]) == []


def test_the_program_checker_catches_a_program_in_a_string(tmp_path, monkeypatch):
    pkg = tmp_path / "host_sim"
    pkg.mkdir()
    (pkg / "bench.py").write_text('DOC = """Two lines\nof prose."""\n'
                                  'CALL = "fill(3)"\n'
                                  '_SCRIPT = """\nimport time\nn = %d\nprint(time.ticks_ms() + n)\n"""\n')
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    assert programs_in_strings("host_sim") == ["host_sim/bench.py:4"]


def test_the_layout_checker_catches_a_forbidden_import(tmp_path, monkeypatch):
    pkg = tmp_path / "protocol"
    pkg.mkdir()
    (pkg / "bad.py").write_text("import host_sim\nfrom firmware import app\nimport struct\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", str(tmp_path))
    assert violations("protocol", DEVICE_MODULES | {"protocol"}) == [
        "protocol/bad.py:1 imports host_sim", "protocol/bad.py:2 imports firmware"]


@pytest.mark.parametrize("module", sorted(
    name[:-3] for name in os.listdir(os.path.join(ROOT, "protocol")) if name.endswith(".py") and name != "__init__.py"))
def test_every_protocol_module_has_a_parity_test(module):
    path = os.path.join(ROOT, "tests", "protocol", "test_%s.py" % module)
    assert os.path.exists(path), "protocol/%s.py has no tests/protocol/test_%s.py" % (module, module)
    assert "runtime" in open(path).read(), "tests for protocol/%s.py do not run on both runtimes" % module


# Tests share code through helpers modules ------------------------------------------------------------


def imports_of_test_modules(tests_dir):
    """Imports of a test module or a conftest anywhere under `tests_dir`. Importing one ties two test files
    together (and a test function imported with it is collected twice); shared code lives in a ring's
    helpers.py, fixtures in conftest.py, which pytest loads by itself."""
    found = []
    for dirpath, _, files in os.walk(tests_dir):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    modules = [base] + [(base + "." if base else "") + alias.name for alias in node.names]
                else:
                    continue
                bad = [m for m in modules if m.split(".")[-1].startswith("test_") or m.split(".")[-1] == "conftest"]
                if bad:
                    found.append("%s:%d imports %s" % (os.path.relpath(path, os.path.dirname(tests_dir)),
                                                       node.lineno, bad[0]))
    return found


def test_no_test_module_imports_another_test_module_or_a_conftest():
    assert imports_of_test_modules(os.path.join(ROOT, "tests")) == []


def test_the_test_import_checker_catches_imports_of_test_modules_and_conftest(tmp_path):
    ring = tmp_path / "tests" / "vboard"
    ring.mkdir(parents=True)
    (ring / "test_bad.py").write_text(
        "import os\n"
        "from tests.vboard.test_heap import READY_USED_BUDGET\n"
        "from tests.vboard.conftest import mpremote\n"
        "from tests.vboard import test_taps\n"
        "from .test_uplink_session import tap\n"
        "import conftest\n"
        "from tests.vboard.helpers import mpremote\n")
    assert imports_of_test_modules(str(tmp_path / "tests")) == [
        "tests/vboard/test_bad.py:2 imports tests.vboard.test_heap",
        "tests/vboard/test_bad.py:3 imports tests.vboard.conftest",
        "tests/vboard/test_bad.py:4 imports tests.vboard.test_taps",
        "tests/vboard/test_bad.py:5 imports test_uplink_session",
        "tests/vboard/test_bad.py:6 imports conftest"]
