"""The technician console's shell: login and commands, one console line at a time (firmware/console.py
reads the lines; this module is loaded with the first one, so a terminal nobody services keeps the heap).

Every reply is one or more lines starting with "@": data lines "@ <text>", then one final line "@ok [text]"
or "@err <reason>" (firmware prints between them are other lines, which a client skips).

Login is challenge-response with a technician certificate (protocol/techcert.py) signed by the config
authority the terminal trusts (/flash/keys/config): `login <certificate base64>` answers a random
challenge, `auth <signature hex>` proves the technician holds the certified key.  A challenge answers one
`auth` only (a replayed response meets a new challenge).  MAX_TRIES failed logins in a row lock the
console for LOCKOUT_S, doubling with each lockout up to LOCKOUT_MAX_S; the count and the lock are kept
on flash, so a reboot does not reset them.  A session ends after SESSION_S without a command.  Logins,
failures, lockouts and every command go to the log (firmware/eventlog.py); card data never appears
(tokens are shown shortened).  /flash/config/console.json may set "max_tries", "lockout_s" and
"session_s".
"""

import asyncio
import binascii
import gc
import json
import os
import struct
import time

from firmware import eventlog, fsutil
from firmware.config import trust
from protocol import link, techcert

MAX_TRIES = 3
LOCKOUT_S = 60
LOCKOUT_MAX_S = 3600
SESSION_S = 300
LOG_LINES = 20
CONFIG_FILE = "config/console.json"
STATE_FILE = "console.state"  # failures in a row, lockouts, locked until (wall clock s)
HEALTH_NAMES = ((link.HEALTH_JOURNAL, "journal"), (link.HEALTH_CLOCK, "clock"), (link.HEALTH_CONFIG, "config"),
                (link.HEALTH_SCANNER, "scanner"), (link.HEALTH_NFC, "nfc"))
SELFTESTS = ("scanner", "nfc", "modem", "flash", "outputs")
HELP = ("status", "queue", "upload now", "config", "deny check TOKEN", "selftest " + "|".join(SELFTESTS),
        "log [N]", "time", "reboot", "service", "logout")
TECH_ONLY = ("upload", "reboot", "service")


def load_config(root):
    try:
        with open(root + "/" + CONFIG_FILE) as f:
            cfg = json.load(f)
        if isinstance(cfg, dict):
            return cfg
    except (OSError, ValueError):
        pass
    return {}


def _setting(cfg, name, default, low, high):
    v = cfg.get(name, default)
    return v if isinstance(v, int) and low <= v <= high else default


class Shell:
    def __init__(self, terminal, write, started):
        self.t = terminal
        self.root = terminal.root
        self.write = write  # one reply line to the console (for replies sent before a command ends)
        cfg = load_config(self.root)
        self.max_tries = _setting(cfg, "max_tries", MAX_TRIES, 1, 20)
        self.lockout_s = _setting(cfg, "lockout_s", LOCKOUT_S, 1, LOCKOUT_MAX_S)
        self.session_s = _setting(cfg, "session_s", SESSION_S, 10, 86400)
        self.failures, self.lockouts, self.locked_until = self._load_state()
        self.user = None  # (name, role) while a session is open
        self._last = 0  # ticks_ms of the session's last command
        self._cert = None  # the certificate of a login waiting for its auth
        self._challenge = None
        self.started = started  # ticks_ms when the terminal started (uptime)
        self.random = os.urandom  # the challenge's source

    # -- commands ------------------------------------------------------------------------------

    async def handle(self, line):
        """The reply lines to one console line."""
        words = line.split()
        if not words:
            return []
        cmd = words[0].lower()
        if cmd == "login":
            return self._login(words[1:])
        if cmd == "auth":
            return self._auth(words[1:])
        if cmd == "help":
            return ["@ " + h for h in HELP] + ["@ login CERT / auth SIGNATURE: see python -m host_sim console", "@ok"]
        if self.user is None:
            return ["@err log in first (login, auth)"]
        if time.ticks_diff(time.ticks_ms(), self._last) > self.session_s * 1000:
            self._note("console: session of %s timed out" % self.user[0], "S")
            self.user = None
            return ["@err session timed out after %d s: log in again" % self.session_s]
        self._last = time.ticks_ms()
        name, role = self.user
        if cmd in TECH_ONLY and role != techcert.ROLE_TECHNICIAN:
            self._note("console: %s refused %s (role %s)" % (name, cmd, techcert.ROLES[role]), "S")
            return ["@err %s needs the technician role" % cmd]
        self._note("console: %s: %s" % (name, _loggable(words)))
        if cmd == "logout":
            self.user = None
            return ["@ok bye"]
        method = getattr(self, "cmd_" + cmd, None)
        if method is None:
            return ["@err unknown command %s (try help)" % _loggable(words[:1])]
        return await method(words[1:])

    # -- login ---------------------------------------------------------------------------------

    def _now(self):
        return int(self.t.board.time_s())

    def _locked_for(self):
        return max(0, self.locked_until - self._now())

    def _login(self, args):
        self._cert = self._challenge = None
        wait = self._locked_for()
        if wait:
            self._note("console: login refused, locked for %d s" % wait, "S")
            return ["@err locked after failed logins: try again in %d s" % wait]
        if len(args) != 1:
            return self._failed("login wants one certificate (base64)")
        try:
            raw = binascii.a2b_base64(args[0])
            cert = techcert.parse(raw, trust.config_keys(self.root), self._now())
        except (ValueError, techcert.CertError) as e:
            return self._failed("certificate refused: %s" % e)
        self._cert = cert
        self._challenge = self.random(techcert.CHALLENGE)
        return ["@ challenge %s %s" % (binascii.hexlify(self._challenge).decode(), self.t.terminal.hex()), "@ok"]

    def _auth(self, args):
        cert, challenge = self._cert, self._challenge
        self._cert = self._challenge = None  # one answer per challenge: a replay meets none
        wait = self._locked_for()
        if wait:
            return ["@err locked after failed logins: try again in %d s" % wait]
        if cert is None:
            return self._failed("no challenge pending: send login first")
        try:
            signature = binascii.unhexlify(args[0]) if len(args) == 1 else b""
        except ValueError:
            signature = b""
        if not techcert.check_response(cert, self.t.terminal, challenge, signature):
            return self._failed("wrong response for %s" % cert["name"])
        self.user = (cert["name"], cert["role"])
        self._last = time.ticks_ms()
        if self.failures:
            self.failures = 0
            self._save_state()
        role = techcert.ROLES[cert["role"]]
        self._note("console: %s logged in (%s)" % (cert["name"], role), "S")
        return ["@ok %s %s, session %d s" % (cert["name"], role, self.session_s)]

    def _failed(self, why):
        self.failures += 1
        line = "@err " + why
        if self.failures >= self.max_tries:
            self.lockouts += 1
            wait = min(self.lockout_s << min(self.lockouts - 1, 12), LOCKOUT_MAX_S)
            self.locked_until = self._now() + wait
            self.failures = 0
            line += "; %d failed logins: locked for %d s" % (self.max_tries, wait)
            self._note("console: %s; locked for %d s" % (why, wait), "S")
        else:
            self._note("console: login failed: %s" % why, "S")
        self._save_state()
        return [line]

    def _load_state(self):
        try:
            with open(self.root + "/" + STATE_FILE) as f:
                s = json.load(f)
            return int(s["failures"]), int(s["lockouts"]), int(s["until"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0, 0, 0

    def _save_state(self):
        try:
            fsutil.write_atomic(self.root + "/" + STATE_FILE, json.dumps(
                {"failures": self.failures, "lockouts": self.lockouts, "until": self.locked_until}))
        except OSError as e:
            print("console: cannot keep the login state: %s" % e)

    def _note(self, text, level="I"):
        eventlog.note(text, level)

    # -- read commands ---------------------------------------------------------------------------

    async def cmd_status(self, args):
        t = self.t
        j = t.journal
        up = t.uplink
        house = up.house
        bits = _health(t)
        log = eventlog.active()
        gc.collect()
        out = {
            "terminal": t.terminal.hex(), "board": getattr(t.board, "NAME", "?"), "firmware": t.board.runtime(),
            "config": _config_versions(t),
            "clock": self._now(), "clock_synced": bool(bits & link.HEALTH_CLOCK),
            "queue": j.depth(), "next_seq": j.next_seq,
            "quarantined": house.quarantined if house is not None else None,
            "damaged": j.damaged, "dropped": j.dropped,
            "health": bits, "health_bits": [n for b, n in HEALTH_NAMES if bits & b],
            "heap_free": gc.mem_free(), "heap_used": gc.mem_alloc(),
            "uptime_s": time.ticks_diff(time.ticks_ms(), self.started) // 1000,
            "link_up": up.peer is not None,
            "log": None if log is None else {"lines": log.lines, "alerts": log.alerts, "lost": log.lost},
        }
        return ["@ " + json.dumps(out), "@ok"]

    async def cmd_queue(self, args):
        j = self.t.journal
        out = {"queue": j.depth(), "next_seq": j.next_seq, "journal_free": j.free, "full": j.full,
               "damaged": j.damaged, "dropped": j.dropped}
        return ["@ " + json.dumps(out), "@ok"]

    async def cmd_config(self, args):
        t = self.t
        active = t.decider.active
        ring = active.keyring
        out = _config_versions(t)
        out["ticket_keys"] = len(ring.keys)
        out["fares"] = {str(k): v for k, v in active.fares.items()}
        profile = getattr(active, "profile", None)
        out["profile"] = None if profile is None else {"profile": profile.get("profile"), "group": profile.get("group")}
        out["console"] = {"max_tries": self.max_tries, "lockout_s": self.lockout_s, "session_s": self.session_s}
        return ["@ " + json.dumps(out), "@ok"]

    async def cmd_deny(self, args):
        if len(args) != 2 or args[0] != "check" or len(args[1]) != 32:
            return ["@err deny check wants a token: 32 hex digits"]
        try:
            token = binascii.unhexlify(args[1])
        except ValueError:
            return ["@err deny check wants a token: 32 hex digits"]
        deny = self.t.deny
        if deny is None:
            return ["@err no deny list on this terminal"]
        out = {"token": eventlog.short(token), "listed": bool(deny.contains(token)), "deny_version": deny.version}
        return ["@ " + json.dumps(out), "@ok"]

    async def cmd_log(self, args):
        n = LOG_LINES
        if args:
            if not args[0].isdigit():
                return ["@err log wants a number of lines"]
            n = int(args[0])
        log = eventlog.active()
        if log is None:
            return ["@err no log on this terminal"]
        return ["@ " + line for line in log.tail(n)] + ["@ok %d lines" % min(n, eventlog.TAIL_MAX)]

    async def cmd_time(self, args):
        bits = _health(self.t)
        out = {"time_s": self._now(), "synced": bool(bits & link.HEALTH_CLOCK), "ticks_ms": time.ticks_ms()}
        return ["@ " + json.dumps(out), "@ok"]

    async def cmd_selftest(self, args):
        if len(args) != 1 or args[0] not in SELFTESTS:
            return ["@err selftest wants one of " + "|".join(SELFTESTS)]
        from firmware import selftest

        result = await getattr(selftest, args[0])(self.t)
        self._note("console: selftest %s: %s" % (args[0], result["verdict"]))
        return ["@ " + json.dumps(result), "@ok " + result["verdict"]]

    # -- technician commands ---------------------------------------------------------------------

    async def cmd_upload(self, args):
        if args != ["now"]:
            return ["@err upload wants: upload now"]
        up = self.t.uplink
        up.wake.set()
        link_up = up.peer is not None
        return ["@ok upload requested, %d records waiting, link %s" % (self.t.journal.depth(),
                                                                       "up" if link_up else "down")]

    async def cmd_reboot(self, args):
        self._flush_log()
        self.write("@ok rebooting")
        await asyncio.sleep_ms(100)
        import machine

        machine.reset()
        return []

    async def cmd_service(self, args):
        """Stop the terminal and leave the REPL to the technician (flashing, provisioning)."""
        who = self.user[0] if self.user is not None else "?"
        self._note("console: %s entered service mode: terminal stopped, REPL open" % who, "S")
        self._flush_log()
        self.write("@ok service mode: the terminal stops, the REPL is open (reset to resume)")
        self.t.board.repl_interrupt(True)
        from firmware.console import ServiceMode

        raise ServiceMode()

    def _flush_log(self):
        log = eventlog.active()
        if log is not None:
            log.flush()


def _health(t):
    """The STATUS health byte as the uplink sends it (journal, clock, config, scanner, NFC)."""
    house = t.uplink.house
    if house is not None:
        return house.health_bits()
    bits = t.health.bits | link.HEALTH_CONFIG
    if not t.journal.full:
        bits |= link.HEALTH_JOURNAL
    return bits


def _config_versions(t):
    """Versions of the configuration in force: deny list, token key, fleet bundles (from their headers)."""
    from protocol import fleet

    active = t.decider.active
    out = {"deny_version": None if t.deny is None else t.deny.version,
           "deny_cards": None if t.deny is None else t.deny.count,
           "token_key": None if active.token_key is None else active.token_key[0]}
    try:
        names = os.listdir(t.root + "/config")
    except OSError:
        names = []
    for name in names:
        if name.startswith("fleet-") and name.endswith(".bin"):
            try:
                with open(t.root + "/config/" + name, "rb") as f:
                    head = f.read(fleet.HEAD)
                if len(head) == fleet.HEAD and head[:4] == fleet.MAGIC:
                    kind, _, _, version, _ = struct.unpack_from(">BBHII", head, 4)
                    out[fleet.NAMES.get(kind, str(kind))] = version
            except OSError:
                pass
    return out


def _loggable(words):
    """A command for the log: printable, bounded, and a token argument shortened."""
    out = []
    for w in words[:4]:
        out.append(w[:8] + ".." if len(w) > 12 else w)
    return eventlog.clean(" ".join(out))
