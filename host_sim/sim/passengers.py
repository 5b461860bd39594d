"""Who taps with what on `sim run`'s terminals, and the profiles those terminals run.

A scenario's passengers (host_sim/sim/scenario.py) become a schedule of taps, each drawn from the seed:
the credential kind by the mix's weights, its code (a phone's CPM code, a card or phone over NFC, a
ticket, a ride code, a payment code, a forged, deny-listed or expired code, garbage), and the moment,
Poisson by the stop's boardings and the hour's rate.  The same scenario and seed give the same
schedule; only what a run signs anew (tickets, whose issuer key each run makes) is rendered when the
tap is presented, from the schedule's ticket id, party and validity.

A Kit prepares a run: the config authority's key, the profile bundle of each terminal group (the
scenario's [profiles.<profile>] sections, the bus's stops from its [[stops]]), the school's roster
bundle, the ticket issuer's key bundle and the ride-code roots, as `provision --group` and the
collector's per-group offer deliver them in the field; and the deny list the fleet holds before the
first tap.  It then presents taps: codes on the scanner, cards and phones on the PN532 emulator at the
board's nfc port, and the bus's stop on the driver display (STOP n) so zone and stage fares apply.
"""

import hashlib
import json
import os
import re
import time

from host_sim import demo, paycodes
from host_sim.backend import promotions, report
from host_sim.emulators import wallet
from host_sim.tools import bundle, provision, ridecodes, tickets
from protocol import fleet, paycode, pn532, record, ridecode, roster, tokens
from protocol import profile as profiles
from protocol.bundle import KIND_DENY

CREDENTIALS = ("cpm", "card", "hce", "ticket", "ride", "paycode", "forged", "denylisted", "expired", "garbage")
NFC = {"card": ("unionpay-card", "visa", "mastercard"), "hce": ("unionpay-hce",)}
OUTCOMES = demo.OUTCOMES + ("WELCOME", "BOARDED", "ALIGHTED")
REJECTED = ("DECLINED", "SEE DRIVER")
PHONES_PER_TERMINAL = 40
CARDS_PER_TERMINAL = 12  # passengers with a card or a phone over NFC, per terminal, of each card profile
CARDS_FIRST = 700  # their accounts, apart from the CPM phones' (demo.passengers: 100 + i)
BLOCKED_PHONES = 3  # per terminal: deny-listed before the run starts
BLOCKED_FIRST = 800  # their test accounts (demo.passengers), apart from the other phones'
EXPIRED = "2001"  # YYMM: the card expired in January 2020
FORGED_PROFILE = "unionpay-card"
FORGED_BIN = "622848"  # the unionpay-card test issuer's: it checks the false cryptogram and declines
GARBAGE = "hello? this is not a payment code"
PAYCODE_FAMILIES = (paycode.UNIONPAY, paycode.WECHAT, paycode.ALIPAY)
RIDE_ALGS = (ridecode.ALG_SM2, ridecode.ALG_P256)
TICKET_ISSUER = 9
SCHOOL_PRODUCT = 50  # the product id of student passes when the school profile names none
PERSON_S = 4  # seconds between the members of a party at the gate
PASSBACK_AFTER_S = 60  # a ticket handed back over the turnstile comes back this soon
ANSWER_TIMEOUT_S = 30  # a long wait: a second presentation would be a second record
NFC_DWELL_S = 0.3
SETUP_TIMEOUT_S = 90
# The unix port keeps every imported module's bytecode in the heap (host_sim/tools/vboard.py DEFAULT_HEAP);
# a terminal whose passengers bring ride codes (the issuer tables, ~55 KB of bytecode and tables on this port)
# and cards over NFC (the EMV kernel) as well ran out at the default 384k importing firmware/emv.py.  A device
# freezes that bytecode into flash, so the simulator gives such a board room for it.
FULL_MIX_HEAP = "448k"
# A payment code is authorised online.  A terminal renews its session after a power cut, when coverage
# returns, or when the clock jumped with a frame unanswered (firmware/uplink.py LINK_TIMEOUT_MS), and a code
# shown while it renews would be declined "network needed" or lose its answer, at the host's pace, not the
# scenario's.  So before a payment code the passenger waits for the renewed session (the collector's next
# hello), or this long for none to begin.
SETTLE_S = 2.5
DECLINE_JOURNAL_S = 10
DECLINE_RECORD = re.compile(rb"\(record #(\d+)\)")  # firmware/app.py's console line for a journalled decline


# -- the scenario's part -----------------------------------------------------------------------------

def _profile_line(where, name):
    """The line of [profiles.<name>...] in the scenario (tomllib keeps no positions)."""
    for n, text in enumerate(where.lines, 1):
        if text.strip().startswith(("[profiles.%s]" % name, "[profiles.%s." % name)):
            return n
    return where.line("profiles")


def profile_body(sc, name, group):
    """The JSON object of `group`'s profile bundle for profile `name`: the scenario's sections, and for a
    bus with zone or stage fares its stops from [[stops]] (zone = the stop's `zone`, else its index)."""
    body = {"profile": name, "group": group}
    for section, value in sc["profiles"].get(name, {}).items():
        body[section] = json.loads(json.dumps(value))
    bus = body.get("bus")
    if isinstance(bus, dict) and "stops" not in bus and bus.get("fare") in ("zone", "stage"):
        band = bus["fare"]
        bus["stops"] = [{"name": s["name"][:24], "lat_e6": 30270000 + 10000 * i, "lon_e6": 120150000 + 10000 * i,
                         band: s["zone"] if s.get("zone") is not None else i} for i, s in enumerate(sc["stops"])]
    return body


def extend(where, doc, sc, error):
    """The passengers' and profiles' keys of a parsed scenario: adds "rates", "profiles", "pupils",
    "off_roster", "party" and "passback" to `sc` (scenario.parse's dict); `error(table, index, key, reason)`
    makes the FILE:LINE: key: reason."""
    p = doc["passengers"]
    rates = {}
    for hour, rate in p.get("rates", {}).items():
        if not (isinstance(hour, str) and hour.isdigit() and len(hour) == 2 and int(hour) < 24):
            raise error("passengers", None, "rates", "%r is not an hour \"00\"..\"23\"" % (hour,))
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
            raise error("passengers", None, "rates", "rate of hour %s must be a number >= 0, not %r" % (hour, rate))
        rates[int(hour)] = float(rate)
    party = []
    for size, weight in p.get("party", {"1": 1.0}).items():
        if not (isinstance(size, str) and size.isdigit() and 1 <= int(size) <= 20):
            raise error("passengers", None, "party", "%r is not a party size \"1\"..\"20\"" % (size,))
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise error("passengers", None, "party", "weight of party %s must be a number >= 0" % size)
        party.append((int(size), float(weight)))
    if not sum(w for _, w in party):
        raise error("passengers", None, "party", "all weights are 0")
    for key in ("off_roster", "passback"):
        if p.get(key, 0) > 1:
            raise error("passengers", None, key, "is a share of the passengers, 0..1, not %r" % p[key])
    for i, s in enumerate(doc["stops"]):
        if s.get("zone", 0) > 31:
            raise error("stops", i, "zone", "zones and stages run 0..31, not %r" % s["zone"])
    sc["rates"] = rates
    sc["party"] = sorted(party)
    sc["pupils"] = p.get("pupils", 30)
    sc["off_roster"] = float(p.get("off_roster", 0))
    sc["passback"] = float(p.get("passback", 0))
    for stop, given in zip(sc["stops"], doc["stops"]):
        stop["zone"] = given.get("zone")
    sc["profiles"] = {}
    tables = doc.get("profiles", {})
    for name, sections in tables.items():
        line = "%s:%d: profiles.%s" % (where.path, _profile_line(where, name), name)
        if name not in profiles.PROFILES:
            raise _scenario_error("%s: no such profile (known: %s)" % (line, ", ".join(profiles.PROFILES)))
        if not isinstance(sections, dict):
            raise _scenario_error("%s: must be a table of the profile's sections" % line)
        sc["profiles"][name] = sections
        try:
            profiles.parse(json.dumps(profile_body(sc, name, "check")).encode())
        except profiles.ProfileError as e:
            raise _scenario_error("%s: %s" % (line, e)) from None
    used = {t["profile"] for t in sc["terminals"]}
    for name in sc["profiles"]:
        if name not in used:
            raise _scenario_error("%s:%d: profiles.%s: no terminal runs this profile"
                                  % (where.path, _profile_line(where, name), name))


def _scenario_error(text):
    from host_sim.sim import scenario

    return scenario.ScenarioError(text)


# -- the schedule ------------------------------------------------------------------------------------

def _poisson(rng, mean):
    """Knuth's method: small means only (boardings per stop visit and hour)."""
    limit, k, p = pow(2.718281828459045, -mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def arrivals(rng, sc, at, dwell_s, boardings):
    """Times of the passengers of one stop visit [at, at + dwell_s): its mean `boardings` spread evenly over
    the visit, each hour's share multiplied by that hour's rate (1 for an hour the rates do not name)."""
    out = []
    start, end = at, at + max(1, dwell_s)
    while start < end:
        hour = (start - sc["midnight"]) // 3600
        edge = min(end, sc["midnight"] + (hour + 1) * 3600)
        mean = boardings * (edge - start) / (end - at) * sc["rates"].get(hour % 24, 1.0)
        out.extend(start + rng.randrange(edge - start) for _ in range(_poisson(rng, mean)))
        start = edge
    return sorted(out)


def group_of(terminal):
    """A terminal's group: its [[terminals]] table's name (terminals route7-1, route7-2 ride route7)."""
    return terminal["name"].rsplit("-", 1)[0]


def pupil_id(group, n):
    return ("%s%05d" % (group[:3].upper(), n)).encode()[:8].ljust(8, b"0")


def schedule(sc, seed):
    """Every tap of the day in time order: (time_s, terminal index, credential kind, payload, stop index).
    A payload is the text a scanner shows, ("nfc", card profile, card number) or ("ticket", id, party, entries,
    holder)."""
    import random

    rng = random.Random(seed)
    kinds, weights = list(sc["mix"]), list(sc["mix"].values())
    sizes, size_weights = [s for s, _ in sc["party"]], [w for _, w in sc["party"]]
    taps = []

    for ti, terminal in enumerate(sc["terminals"]):
        phones = demo.passengers(PHONES_PER_TERMINAL, first=ti * PHONES_PER_TERMINAL)
        blocked = blocked_phones(ti)
        group = group_of(terminal)
        school = terminal["profile"] == "school"
        riders = []  # school: (pass, stop boarded) of the last run to school
        last = len(sc["stops"]) - 1
        for ri, run_start in enumerate(sc["runs"]):
            if school and ri % 2:
                _homeward(rng, sc, ti, run_start, riders, taps)
                continue
            at = run_start
            aboard = []
            riding = set()  # the passengers of this run: each boards once
            for si, stop in enumerate(sc["stops"]):
                at += stop["travel_s"]
                if school and si == last:
                    for n, t in enumerate(sorted(at + rng.randrange(max(1, stop["dwell_s"])) for _ in aboard)):
                        taps.append((t, ti, "ticket", aboard[n][0], si))  # every pupil aboard alights here
                for t in arrivals(rng, sc, at, stop["dwell_s"], stop["boardings"]):
                    kind = rng.choices(kinds, weights)[0]
                    if kind == "ticket" and school:
                        payload = _pupil(rng, sc, group, {p[1] for p, _ in aboard}, len(taps))
                        if si != last and payload[4] != STRANGER:
                            aboard.append((payload, si))
                        taps.append((t, ti, kind, payload, si))
                    elif kind == "ticket":
                        size = rng.choices(sizes, size_weights)[0]
                        back = size == 1 and rng.random() < sc["passback"]
                        payload = ("ticket", b"T%07d" % len(taps), size, 0 if back else 1, b"")
                        taps.extend((t + PERSON_S * k, ti, kind, payload, si) for k in range(size))
                        if back:
                            taps.append((t + PASSBACK_AFTER_S, ti, kind, payload, si))
                    else:
                        taps.append((t, ti, kind, _payload(rng, kind, phones, blocked, len(taps), t,
                                                            ti * CARDS_PER_TERMINAL, riding), si))
                at += stop["dwell_s"]
            riders = aboard
    taps.sort(key=lambda tap: (tap[0], tap[1]))
    return taps


def board_heap(sc):
    """The virtual boards' heap for this scenario's mix (see FULL_MIX_HEAP)."""
    from host_sim.tools import vboard

    if "ride" in sc["mix"] and ("card" in sc["mix"] or "hce" in sc["mix"]):
        return FULL_MIX_HEAP
    return vboard.DEFAULT_HEAP


STRANGER = b"G-NONE"  # the holder of a pass that is on no roster


def _pupil(rng, sc, group, aboard, n):
    """A pass shown on the way to school: a pupil of the roster not yet aboard, or (off_roster) a stranger's."""
    free = [k for k in range(sc["pupils"]) if pupil_id(group, k) not in aboard]
    if not free or rng.random() < sc["off_roster"]:
        return ("ticket", b"X%07d" % n, 1, 0, STRANGER)
    pupil = pupil_id(group, rng.choice(free))
    return ("ticket", pupil, 1, 0, b"G-" + pupil[-4:])


def _homeward(rng, sc, ti, run_start, riders, taps):
    """A school's run home: the route backwards from the school, where the pupils who rode to school board,
    each alighting at the stop where they boarded that morning."""
    stops = sc["stops"]
    last = len(stops) - 1
    at = run_start + stops[0]["travel_s"]
    for si in range(last, -1, -1):
        stop = stops[si]
        going = [p for p, home in riders if (si == last or home == si)]
        for t, payload in zip(sorted(at + rng.randrange(max(1, stop["dwell_s"])) for _ in going), going):
            taps.append((t, ti, "ticket", payload, si))
        at += stop["dwell_s"] + (stop["travel_s"] if si > 0 else 0)


def blocked_phones(ti):
    """The phones of terminal `ti`'s passengers whose cards the fleet blocked before the run."""
    return demo.passengers(BLOCKED_PHONES, first=BLOCKED_FIRST + ti * BLOCKED_PHONES)


def card_pan(profile, k):
    """The card number of passenger `k`'s card of an emv_card profile: the test card's issuer and length (the
    issuer simulation derives each card's keys from its number)."""
    from host_sim.emulators import emv_card

    pan = emv_card.PROFILES[profile]["pan"]
    return demo._with_check_digit(pan[:-4] + "%03d" % (CARDS_FIRST + k))


def _pick(rng, items, riding):
    """A passenger of `items` not yet riding this run (any, when all are), now riding."""
    free = [x for x in items if x not in riding] or list(items)
    got = free[rng.randrange(len(free))]
    riding.add(got)
    return got


def _payload(rng, kind, phones, blocked, n, now, cards_base=0, riding=None):
    """A passenger's code, of one not yet riding this run (`riding`).  A forged code is a card of its own,
    seen once: the issuer's decline puts it on the deny list, and whether a terminal holds that list at a
    later tap would be the host's timing."""
    riding = set() if riding is None else riding
    if kind == "garbage":
        return GARBAGE
    if kind == "forged":
        pan = demo._with_check_digit(FORGED_BIN + "9%08d" % n)  # apart from every genuine account
        return wallet.code(FORGED_PROFILE, pan, atc=1, cryptogram=rng.randbytes(8), un=rng.randbytes(4))
    if kind in NFC:
        profile = rng.choice(NFC[kind])
        card = _pick(rng, [(profile, cards_base + k) for k in range(CARDS_PER_TERMINAL)], riding)
        return ("nfc", profile, card_pan(*card))
    if kind == "ride":
        alg = rng.choice(RIDE_ALGS)
        rider = _pick(rng, [b"RIDER%03d" % k for k in range(200)], riding)
        return ridecodes.issue(alg, now, user_id=rider, counter=n + 1, product=1)
    if kind == "paycode":
        family = rng.choice(PAYCODE_FAMILIES)
        n = paycodes.LENGTH[family] - len(paycodes.PREFIX[family]) - 4
        return paycodes.make(family, body="".join(str(rng.randrange(10)) for _ in range(n)))
    phone = _pick(rng, blocked if kind == "denylisted" else phones, riding)
    phone.atc += 1
    expiry = EXPIRED if kind == "expired" else phone.expiry
    return wallet.code(phone.profile, phone.pan, expiry, phone.atc, un=rng.randbytes(4))


# -- a run's keys, bundles and presentations -----------------------------------------------------------

class Kit:
    """What one `sim run` signs and delivers, and how its passengers present their credentials."""

    def __init__(self, sc, workdir, store, seed=0):
        self.sc = sc
        self.store = store
        self.seed = seed
        # The keys a draw or a token depends on come from the seed, so promotions' random discounts, too,
        # are the same for the same seed: the fleet token key here, each terminal's device key at provisioning.
        store.token_key(first=self._key("fleet token key"))
        self.dir = os.path.join(workdir, "fleet")
        self.shelf = os.path.join(self.dir, "bundles")
        os.makedirs(self.shelf)
        self.authority = os.path.join(self.dir, "authority.pem")
        bundle.keygen(self.authority, 1)
        self.signer = bundle.load_signer(self.authority)
        self.roots = os.path.join(self.dir, "ride-roots")
        with open(self.roots, "w") as f:
            f.write(ridecodes.root_lines())
        self.ticket_key = tickets.generate_key()
        self.waits = {}  # terminal name -> console lines to see before its first tap
        self._sign(fleet.KIND_TICKET_KEYS, "ticket-keys", bundle.ticket_keys_body(
            [(TICKET_ISSUER, 1, self.ticket_key.public_key().public_numbers().n)]))
        groups = {}
        for t in sc["terminals"]:
            groups.setdefault(group_of(t), t["profile"])
        day = profiles.local_day(None, sc["midnight"] + 43200)
        for group, name in sorted(groups.items()):
            waits = [b"fleet ticket-keys: version 1 active"]
            if name in sc["profiles"]:
                body = bundle.profile_body(json.dumps(profile_body(sc, name, group)))
                self._sign(fleet.KIND_PROFILE, "profile-" + group, body)
                waits.append(b"fleet profile: version 1 active")
                if name == "bus":
                    waits.append(b"driver display: listening")
            if name == "school" and name in sc["profiles"]:  # a roster is the school profile's
                passes = [(pupil_id(group, n), 0x7F, day - 30, day + 120) for n in range(sc["pupils"])]
                self._sign(fleet.KIND_ROSTER, "roster-" + group, roster.body(group, TICKET_ISSUER, sorted(passes)))
                waits.append(b"fleet roster: version 1 active")
            for t in sc["terminals"]:
                if group_of(t) == group:
                    self.waits[t["name"]] = waits
        self.school_product = sc["profiles"].get("school", {}).get("school", {}).get("product", SCHOOL_PRODUCT)
        self._profile_of = {t["name"]: sc["profiles"].get(t["profile"], {}) for t in sc["terminals"]}
        self._provisioned = {}  # terminal name -> its console mark when it was provisioned
        self._nfc = {}  # terminal name -> its PN532 emulator
        self._in_field = set()  # terminals whose last tap was a card's
        self._polls = {}  # terminal name -> its reader's commands when the clock last moved
        self._stop = {}
        self._atc = {}  # (card profile, card number) -> its last transaction counter
        self._moved = {}  # terminal name -> the collector's last hello from it when the clock last moved
        self.by_credential = {k: {"taps": 0, "accepted": 0} for k in sc["mix"]}

    def _key(self, purpose):
        return hashlib.sha256(("sim run %d: %s" % (self.seed, purpose)).encode()).digest()

    def _sign(self, kind, name, body):
        key, key_id = self.signer
        with open(os.path.join(self.shelf, "%s-1.zfb" % name), "wb") as f:
            f.write(bundle.sign(key, key_id, kind, 1, body))

    def block_cards(self):
        """Every terminal's deny-listed passengers' cards on the fleet's deny list, before the first tap."""
        if "denylisted" not in self.sc["mix"]:
            return
        version, key = self.store.token_key()
        for ti, _ in enumerate(self.sc["terminals"]):
            for phone in blocked_phones(ti):
                self.store.deny(tokens.token(key, phone.pan), "reported stolen", key_version=version)

    def provision(self, t, db, uplink=None):
        """Provision terminal `t` (demo.Terminal) into its group with the authority's key, the ride roots and
        the uplink config file `uplink` (None: the serial line); a PN532 in its nfc port when passengers tap
        cards or phones."""
        if "card" in self.sc["mix"] or "hce" in self.sc["mix"]:
            from host_sim.emulators.pn532 import Pn532Emulator

            self._nfc[t.name] = Pn532Emulator(t.board.ports["nfc"])
        mark = t.board.console_mark()
        t.terminal = provision.provision(t.board.ports["console"], db, config_keys=self.authority + ".pub",
                                         group=group_of({"name": t.name}), ride_roots=self.roots,
                                         device_key=self._key("device key of " + t.name), uplink=uplink)
        t.board.wait_console(b"ready:", timeout=30, since=mark)
        self._provisioned[t.name] = mark

    def ready(self, t):
        """Wait until terminal `t` holds its bundles and the deny list: the field's state before service."""
        for line in self.waits.get(t.name, ()):
            t.board.wait_console(line, timeout=SETUP_TIMEOUT_S, since=self._provisioned[t.name])
        version = self.store.deny_list_version()
        demo._wait("%s's deny list at version %d" % (t.name, version),
                   lambda: self.store.delivered_version(t.terminal, KIND_DENY) >= version, timeout=SETUP_TIMEOUT_S)

    def text(self, payload, when):
        """The text a scanner shows for a scanned payload (tickets are signed now, with the run's key)."""
        if isinstance(payload, str):
            return payload
        _, tid, party, entries, holder = payload
        school = holder != b""
        return tickets.issue(self.ticket_key, TICKET_ISSUER, 1, tid,
                             product=self.school_product if school else 1,
                             valid_from=self.sc["midnight"], valid_to=self.sc["midnight"] + (86400 * 200 if school
                                                                                            else 86400),
                             entries=entries, holder=holder, party=party)

    def hello(self, t):
        """The collector's time of terminal `t`'s last HELLO (a new session), or None."""
        rows = self.store.query("SELECT last_hello FROM terminals WHERE terminal = ?", (t.terminal,))
        return rows[0][0] if rows else None

    def settle(self, t, hello, timeout=SETTLE_S):
        """Wait until terminal `t`'s session is the one it will keep after the clock moved (see SETTLE_S) or
        its power came back; `hello` is the collector's last hello from it before."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.hello(t) != hello:
                time.sleep(0.5)  # the new session's greeting: TIME and STATUS
                return
            time.sleep(0.05)

    def at_stop(self, t, stop):
        """Put bus terminal `t` at stop index `stop` with its driver display (once per stop visit); called
        right after the clock moved."""
        self._moved[t.name] = self.hello(t)
        emu = self._nfc.get(t.name)
        self._polls[t.name] = len(emu.commands) if emu is not None else 0
        if "bus" not in self._profile_of[t.name] or self._stop.get(t.name) == stop:
            return
        import serial

        panel = serial.serial_for_url(t.board.ports["driver"], baudrate=9600, timeout=10)
        try:
            panel.write(b"STOP %d\r\n" % stop)
            answer = panel.readline()
        finally:
            panel.close()
        if not answer.startswith(b"OK STOP %d" % stop):
            raise RuntimeError("the driver display of %s answered %r to STOP %d" % (t.name, answer, stop))
        self._stop[t.name] = stop

    def present(self, t, kind, payload, when, progress):
        """One tap on terminal `t`: its answer's display event (a passenger shows a code again, or taps
        the card again, when the terminal gives none)."""
        if kind == "paycode":
            self.settle(t, self._moved.get(t.name))
        for _ in range(demo.MAX_RETAPS + 1):
            seen = len(t.events.items)
            mark = t.board.console_mark()
            if isinstance(payload, tuple) and payload[0] == "nfc":
                self._tap_card(t, payload[1], payload[2])
            else:
                t.scanner.present(self.text(payload, when))
            try:
                _, ev = t.events.wait_display(seen, ANSWER_TIMEOUT_S, prefixes=OUTCOMES)
            except TimeoutError:
                continue
            self._count(kind, ev)
            if ev["text"].startswith(REJECTED):
                seq = self._journalled(t, mark)
                if seq is not None:
                    t.declines.add(seq)
            return ev
        raise RuntimeError("terminal %s gave no answer to tap %d; its console:\n%s"
                           % (t.name, progress.presented + 1, t.board.console_text()[-1500:]))

    def _journalled(self, t, mark):
        """A terminal tells the passenger of a decline first and journals it after (firmware/declines.py):
        wait for the journal's word, so what comes next (a power cut, a clock jump, the end of the run)
        finds it written, or counted with an identical one, whatever the host's pace.  Returns the
        record's sequence number, or None when the decline was coalesced or not recorded."""
        def line():
            after = t.board.console_since(mark).partition(b"tap declined:")[2]
            return after.partition(b"\n")[0] if b"\n" in after else None

        try:
            t.board.wait_console(b"tap declined:", timeout=DECLINE_JOURNAL_S, since=mark)
            demo._wait("%s's console line for the decline" % t.name, lambda: line() is not None, timeout=5)
        except TimeoutError:
            return None  # a decline the terminal does not report on its console: nothing to wait for
        found = DECLINE_RECORD.search(line())
        return int(found.group(1)) if found else None

    def _tap_card(self, t, profile, pan):
        """A card or phone over NFC (emv_card's test card of `profile` with the passenger's number), its
        transaction counter shared by every terminal it taps at (a card counts its own transactions)."""
        atc = self._atc[(profile, pan)] = self._atc.get((profile, pan), 0) + 1
        emu = self._nfc[t.name]
        # A clock jump times out the reader's command in flight (its timeouts count ticks); a card put in
        # the field while the reader recovers may fail to read, at the host's pace.  So the passenger
        # waits until the reader polls the empty field again, twice, since the clock moved.
        since = self._polls.get(t.name, 0)
        demo._wait("%s's reader to poll the field" % t.name,
                   lambda: emu.commands[since:].count(pn532.CMD_IN_LIST_PASSIVE_TARGET) >= 2, timeout=20)
        with emu.lock:  # the reader sees the passenger's card, never the test card it is made from
            emu.present(profile, atc=atc, dwell_s=NFC_DWELL_S)
            emu.card.p = dict(emu.card.p, pan=pan)
        self._in_field.add(t.name)

    def card_gone(self, t):
        """After a card tap: the card has left the field and the terminal saw the empty field (its next
        read is a new tap)."""
        if t.name not in self._in_field:
            return
        self._in_field.discard(t.name)
        emu = self._nfc[t.name]

        demo._wait("the card to leave %s's field" % t.name, lambda: emu.card is None, timeout=20)
        polls = len(emu.commands)
        demo._wait("%s to poll the empty field" % t.name,
                   lambda: pn532.CMD_IN_LIST_PASSIVE_TARGET in emu.commands[polls:], timeout=20)

    def _count(self, kind, ev):
        c = self.by_credential.setdefault(kind, {"taps": 0, "accepted": 0})
        c["taps"] += 1
        if not ev["text"].startswith(REJECTED):
            c["accepted"] += 1

    def close(self):
        for emu in self._nfc.values():
            emu.close()


def tap_key(token, atc, kind, when):
    """What makes a stored tap one tap: a payment's credential and counter; a ticket or a student pass is
    shown again and again (a party's members, a pupil's boarding and alighting), and a ride code's record
    keeps no ATC (a rider's codes share a token), each showing a record of its own at its own time, so for
    those the time too."""
    if atc is None or kind in (record.KIND_TICKET, record.KIND_SCHOOL_PASS):
        return token, atc, when
    return token, atc


def promotion_fen(store):
    """The random discounts (promotions) the terminals gave, as the host counts their spend."""
    return sum(row["discount_fen"] for row in promotions.spend(store))


def subsidy_fen(store):
    """The programme's subsidy for the run's approved taps (the settlement's rule, report.reconcile) plus the
    promotions' discounts, which the county pays too."""
    return sum(row["subsidy_fen"] for row in report.reconcile(store)) + promotion_fen(store)

