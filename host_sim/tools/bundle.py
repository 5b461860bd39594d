"""`python -m host_sim bundle keygen|make|show`: the config authority's signed fleet bundles (protocol/fleet.py).

The authority signs a bundle once, offline; the collector serves the same bytes to every terminal
(`collector --bundles DIR`) and terminals verify with the public key provisioning put in
/flash/keys/config.

    bundle keygen --key authority.pem [--key-id 1]
        RSA-2048 private key (mode 600) and authority.pem.pub: the keyring line(s) a terminal holds
        (`provision --config-keys authority.pem.pub`).  Prints JSON.
    bundle make fares --key authority.pem --version N --fare qr=350 --fare emv=300 --out fares-N.zfb
    bundle make ticket-keys --key authority.pem --version N --ticket-key 7:1 [--revoke 7:0]
                            [--revoke-ticket 7:4c4f535450415353] --out keys-N.zfb
        Signs with the key under the key id written in KEY.pub.  Ticket keys are the issuer keys kept
        by `qr make ticket` (host_sim/tools/tickets.py, --keys-dir).
    bundle make profile --key authority.pem --version N --profile route-7.json --out profile-N.zfb
        A terminal profile (protocol/profile.py: product, group, sections), checked here as the terminal
        will check it; the collector offers it to the terminals provisioned into its "group".
    bundle make roster --key authority.pem --version N --group school-3 --issuer 7 --pass 5055504c30303031
                       [--pass 5055504c30303032:mon,wed:2026-09-01:2027-01-20] [--weekdays mon-fri]
                       [--from 2026-09-01] [--to 2027-07-10] --out roster-N.zfb
        A school's roster of student passes (protocol/roster.py): pass ids (ticket ids, 8 bytes as hex)
        of ticket issuer --issuer, each riding on the given weekdays between two dates (inclusive); a
        pass without its own takes --weekdays/--from/--to.  A pass listed twice is refused.
    bundle show FILE [--config-keys authority.pem.pub]
        The bundle as JSON; with the public keys, also whether its signature holds.
    bundle techkey --key authority.pem --name alice [--role technician|viewer] [--days 30] --out alice.tech
        A technician's key for the terminal console (`console PORT --key alice.tech`): a new RSA-2048 key
        and its certificate (protocol/techcert.py: name, role, expiry) signed by the config key, in one
        file of mode 600.  Prints JSON (never the key).
"""

import base64
import datetime
import json
import os
import struct
import sys
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from host_sim.tools import tickets
from protocol import fleet, record, roster, techcert, ticket

CREDENTIALS = {"qr": record.KIND_QR_CPM, "ticket": record.KIND_TICKET, "emv": record.KIND_EMV_CONTACTLESS,
               "ride": record.KIND_RIDE_CODE}
SUFFIX = ".zfb"


def public_line(key, key_id):
    """The keyring line of a config key, as /flash/keys/config holds it."""
    return tickets.keyring_line(key, fleet.AUTHORITY, key_id)


def keygen(path, key_id):
    if os.path.exists(path):
        raise SystemExit("%s exists: a config key is never overwritten" % path)
    key = tickets.generate_key()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    with open(path + ".pub", "w") as f:
        f.write(public_line(key, key_id) + "\n")
    return {"key_file": path, "public_file": path + ".pub", "key_id": key_id}


def load_signer(path):
    """(private key, key id): the key id is the one in PATH.pub (made by keygen)."""
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(path + ".pub") as f:
        words = f.readline().split()
    if len(words) != 4 or words[0] != "key" or int(words[3], 16) != key.public_key().public_numbers().n:
        raise SystemExit("%s.pub is not the public line of %s" % (path, path))
    return key, int(words[2])


def unsigned(kind, key_id, version, issued, body):
    """Header and body (protocol/fleet.py): the bytes the authority signs; the bundle is these + the signature."""
    if kind not in fleet.MAX_BODY or len(body) > fleet.MAX_BODY[kind]:
        raise fleet.FleetError("kind %d with a body of %d bytes" % (kind, len(body)))
    if not 0 < version <= 0xFFFFFFFF:
        raise fleet.FleetError("version must be 1 .. 2^32-1")
    return fleet.MAGIC + struct.pack(">BBHII", kind, key_id, len(body), version, issued) + bytes(body)


def fares_body(fares):
    """`fares`: {credential kind: fare in fen}."""
    if not 0 < len(fares) <= fleet.MAX_FARES:
        raise fleet.FleetError("a fare table has 1 .. %d entries" % fleet.MAX_FARES)
    return bytes([len(fares)]) + b"".join(struct.pack(">BI", k, fares[k]) for k in sorted(fares))


def ticket_keys_body(keys, revoked=(), tickets=()):
    """`keys`: [(issuer, key id, modulus int)], `revoked`: [(issuer, key id)], `tickets`: [(issuer, ticket id)]."""
    if len(keys) > fleet.MAX_KEYS or len(revoked) > fleet.MAX_REVOKED or len(tickets) > fleet.MAX_TICKETS:
        raise fleet.FleetError("at most %d keys, %d revoked keys, %d revoked tickets"
                               % (fleet.MAX_KEYS, fleet.MAX_REVOKED, fleet.MAX_TICKETS))
    out = bytearray([len(keys), len(revoked), len(tickets)])
    for issuer, kid, n in keys:
        out += struct.pack(">HB", issuer, kid) + n.to_bytes(fleet.SIG, "big")
    for issuer, kid in revoked:
        out += struct.pack(">HB", issuer, kid)
    for issuer, tid in tickets:
        if len(tid) != 8:
            raise fleet.FleetError("a ticket id is 8 bytes")
        out += struct.pack(">H", issuer) + bytes(tid)
    return bytes(out)


def ride_revoked_body(revoked):
    """`revoked`: [(issuer, issuer key id)] of ride-code issuers (protocol/ridecode.py)."""
    if len(revoked) > fleet.MAX_RIDE_REVOKED:
        raise fleet.FleetError("at most %d revoked ride issuers" % fleet.MAX_RIDE_REVOKED)
    return bytes([len(revoked)]) + b"".join(struct.pack(">HB", i, k) for i, k in sorted(set(revoked)))


def profile_body(text):
    """The body of a profile bundle: the JSON text, checked (protocol/profile.py parse) and compacted."""
    data = text.encode() if isinstance(text, str) else bytes(text)
    try:
        json.loads(data)
    except ValueError as e:
        raise fleet.FleetError("profile is not JSON: %s" % e) from e
    body = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=False).encode()
    fleet.profile_body(body)
    return body


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EPOCH = datetime.date(1970, 1, 1)


def weekday_mask(spec):
    """Bit mask (bit 0 Monday) of "mon-fri", "mon,wed,fri" or "sat-sun"."""
    mask = 0
    for part in spec.lower().split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError("weekdays %r: use mon..sun, ranges (mon-fri) and commas" % spec)
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        if b < a:
            raise ValueError("weekdays %r: a range runs forward (mon-fri)" % spec)
        for i in range(a, b + 1):
            mask |= 1 << i
    return mask


def day_number(text):
    """The local day number (protocol/profile.py local_day) of a date YYYY-MM-DD."""
    try:
        return (datetime.date.fromisoformat(text) - EPOCH).days
    except ValueError:
        raise ValueError("date %r is not YYYY-MM-DD" % text) from None


def day_text(day):
    return (EPOCH + datetime.timedelta(days=day)).isoformat()


def roster_specs(args):
    """[(pass id, weekdays, first day, last day)] of the --pass options (ID or ID:WEEKDAYS:FROM:TO)."""
    today = datetime.date.today().isoformat()
    first = day_number(args.date_from or today)
    last = day_number(args.date_to) if args.date_to else first + 365
    days = weekday_mask(args.weekdays)
    out = []
    for spec in args.pass_id:
        parts = spec.split(":")
        if len(parts) not in (1, 4):
            raise ValueError("--pass wants ID or ID:WEEKDAYS:FROM:TO, got %r" % spec)
        try:
            pid = bytes.fromhex(parts[0])
        except ValueError:
            pid = b""
        if len(pid) != 8:
            raise ValueError("pass id %r is not 8 bytes of hex" % parts[0])
        if len(parts) == 4:
            out.append((pid, weekday_mask(parts[1]), day_number(parts[2]), day_number(parts[3])))
        else:
            out.append((pid, days, first, last))
    if not out:
        raise ValueError("a roster lists at least one --pass")
    return out


def sign(key, key_id, kind, version, body, issued=None):
    """A whole bundle: header, body and the RSA PKCS#1 v1.5 SHA-256 signature by `key` (cryptography)."""
    data = unsigned(kind, key_id, version, int(time.time()) if issued is None else issued, body)
    return data + key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def fare_specs(specs):
    """{credential kind: fen} from --fare KIND=FEN options."""
    fares = {}
    for spec in specs:
        name, _, fen = spec.partition("=")
        if name not in CREDENTIALS or not fen.isdigit():
            raise SystemExit("--fare wants KIND=FEN with KIND one of %s, got %r" % ("/".join(CREDENTIALS), spec))
        fares[CREDENTIALS[name]] = int(fen)
    return fares


def _pair(spec):
    a, _, b = spec.partition(":")
    return int(a), b


def ticket_key_specs(args):
    """The ticket-keys body of the --ticket-key / --revoke / --revoke-ticket options."""
    keys = []
    for spec in args.ticket_key:
        issuer, kid = _pair(spec)
        key = tickets.load_or_create(issuer, int(kid), args.keys_dir)
        keys.append((issuer, int(kid), key.public_key().public_numbers().n))
    revoked = [(i, int(k)) for i, k in map(_pair, args.revoke)]
    revoked_tickets = [(i, bytes.fromhex(t)) for i, t in map(_pair, args.revoke_ticket)]
    return ticket_keys_body(keys, revoked, revoked_tickets)


def show(data, config_keys=None):
    """A bundle as a JSON-able dict; `config_keys` (keyring text) also checks the signature."""
    kind, kid, b, version, issued = fleet.head(data[:fleet.HEAD], len(data))
    out = {"kind": fleet.NAMES[kind], "key_id": kid, "version": version, "issued": issued, "size": len(data)}
    body = data[fleet.HEAD:fleet.HEAD + b]
    if kind == fleet.KIND_FARES:
        names = {v: k for k, v in CREDENTIALS.items()}
        out["fares"] = {names.get(k, str(k)): fen for k, fen in sorted(fleet.fares(body).items())}
    elif kind == fleet.KIND_RIDE_REVOKED:
        out["ride_revoked"] = ["%d:%d" % ref for ref in sorted(fleet.ride_revoked(body))]
    elif kind == fleet.KIND_ROSTER:
        got = fleet.read_roster(body)
        passes = []
        for i in range(got.count):
            off = got.start + i * roster.ENTRY
            mask, first, last = struct.unpack_from(">BHH", got.body, off + 8)
            passes.append({"pass": got.body[off:off + 8].hex(),
                           "weekdays": ",".join(d for b, d in enumerate(WEEKDAYS) if mask >> b & 1),
                           "from": day_text(first), "to": day_text(last)})
        out["roster"] = {"group": got.group, "issuer": got.issuer, "passes": passes}
    elif kind == fleet.KIND_PROFILE:
        out["profile"] = fleet.profile_body(body)
    else:
        ring = fleet.keyring(body)
        out["keys"] = ["%d:%d" % ref for ref in sorted(ring.keys)]
        out["revoked"] = ["%d:%d" % ref for ref in sorted(ring.revoked)]
        out["revoked_tickets"] = ["%d:%s" % (i, t.hex()) for i, t in sorted(ring.revoked_tickets)]
    if config_keys is not None:
        ring = ticket.Keyring()
        for line in config_keys.splitlines():
            ring.load_line(line)
        try:
            fleet.parse(data, ring)
            out["signature"] = "ok"
        except fleet.FleetError as e:
            out["signature"] = str(e)
    return out


def profile_group(body):
    """The group a profile body is addressed to, read without checking the rest: a terminal of that
    group is offered it and refuses a bad one with its reason, which the collector keeps for the operator."""
    try:
        group = json.loads(bytes(body).decode()).get("group")
    except (ValueError, UnicodeError, AttributeError) as e:
        raise fleet.FleetError("profile without a group") from e
    if not isinstance(group, str):
        raise fleet.FleetError("profile without a group")
    return group


def roster_group(body):
    """The group a roster body is addressed to, read without checking the rest (like profile_group): the
    terminal of that group refuses a bad roster with its reason, which the collector keeps."""
    g = body[0] if len(body) else 0
    try:
        if not 0 < g <= roster.MAX_GROUP or len(body) < 1 + g:
            raise ValueError
        return bytes(body[1:1 + g]).decode()
    except (ValueError, UnicodeError) as e:
        raise fleet.FleetError("roster without a group") from e


def newest(directory):
    """{kind: (version, bundle bytes)}: the highest version of each kind among DIR/*.zfb, and for profiles
    {(KIND_PROFILE, group): (version, bytes)}: the highest of each terminal group.
    Files that are not well-formed fleet bundles are skipped (the terminal would refuse them)."""
    best = {}
    for name in sorted(os.listdir(directory)):
        if not name.endswith(SUFFIX):
            continue
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read(fleet.MAX_SIZE + 1)
        try:
            kind, _, b, version, _ = fleet.head(data[:fleet.HEAD], len(data))
            if kind == fleet.KIND_PROFILE:
                kind = (kind, profile_group(data[fleet.HEAD:fleet.HEAD + b]))
            elif kind == fleet.KIND_ROSTER:  # a roster, like a profile, for one terminal group
                kind = (kind, roster_group(data[fleet.HEAD:fleet.HEAD + b]))
        except fleet.FleetError:
            continue
        if version > best.get(kind, (0, b""))[0]:
            best[kind] = (version, data)
    return best


CERT_BEGIN = "-----BEGIN ZHIFU TECHNICIAN CERTIFICATE-----"
CERT_END = "-----END ZHIFU TECHNICIAN CERTIFICATE-----"
ROLE_NAMES = {name: role for role, name in techcert.ROLES.items()}


def techkey(authority, name, role, days, out, now=None):
    """Write a technician key file (private key PEM + certificate) to `out`; its description as a dict."""
    if os.path.exists(out):
        raise SystemExit("%s exists: a technician key is never overwritten" % out)
    signer, key_id = load_signer(authority)
    key = tickets.generate_key()
    issued = int(time.time()) if now is None else now
    expires = issued + days * 86400
    signed = techcert.body(key_id, ROLE_NAMES[role], issued, expires, name, key.public_key().public_numbers().n)
    cert = signed + signer.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    armored = "%s\n%s\n%s\n" % (CERT_BEGIN, base64.b64encode(cert).decode(), CERT_END)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem + armored.encode())
    return {"key_file": out, "name": name, "role": role, "issued": issued, "expires": expires, "config_key_id": key_id}


def load_techkey(path):
    """(private key, certificate bytes) of a technician key file; ValueError with a reason."""
    with open(path, "rb") as f:
        text = f.read()
    try:
        key = serialization.load_pem_private_key(text, password=None)
    except (ValueError, TypeError) as e:
        raise ValueError("%s holds no private key (%s)" % (path, e)) from None
    body = text.decode("ascii", "replace")
    if CERT_BEGIN not in body or CERT_END not in body:
        raise ValueError("%s holds no technician certificate (make one with bundle techkey)" % path)
    b64 = body.split(CERT_BEGIN, 1)[1].split(CERT_END, 1)[0]
    try:
        cert = base64.b64decode("".join(b64.split()), validate=True)
    except ValueError:
        raise ValueError("%s: the certificate is not base64" % path) from None
    return key, cert


def main(args):
    try:
        if args.action == "techkey":
            print(json.dumps(techkey(args.key, args.name, args.role, args.days, args.out)))
            return 0
        if args.action == "keygen":
            print(json.dumps(keygen(args.key, args.key_id)))
            return 0
        if args.action == "show":
            with open(args.file, "rb") as f:
                data = f.read()
            keys = None
            if args.config_keys:
                with open(args.config_keys) as f:
                    keys = f.read()
            print(json.dumps(show(data, keys)))
            return 0
        key, key_id = load_signer(args.key)
        if args.kind == "fares":
            data = sign(key, key_id, fleet.KIND_FARES, args.version, fares_body(fare_specs(args.fare)))
        elif args.kind == "roster":
            if not args.group:
                raise SystemExit("bundle make roster needs --group NAME (the school's terminal group)")
            body = roster.body(args.group, args.issuer, roster_specs(args))
            data = sign(key, key_id, fleet.KIND_ROSTER, args.version, body)
        elif args.kind == "profile":
            if not args.profile:
                raise SystemExit("bundle make profile needs --profile FILE.json")
            with open(args.profile, "rb") as f:
                body = profile_body(f.read())
            data = sign(key, key_id, fleet.KIND_PROFILE, args.version, body)
        elif args.kind == "ride-revoked":
            revoked = [(i, int(k)) for i, k in map(_pair, args.revoke)]
            data = sign(key, key_id, fleet.KIND_RIDE_REVOKED, args.version, ride_revoked_body(revoked))
        else:
            data = sign(key, key_id, fleet.KIND_TICKET_KEYS, args.version, ticket_key_specs(args))
        with open(args.out, "wb") as f:
            f.write(data)
        print(json.dumps(dict(show(data), out=args.out)))
        return 0
    except (fleet.FleetError, ticket.TicketError, techcert.CertError, ValueError, OSError) as e:
        print("bundle: %s" % e, file=sys.stderr)
        return 1


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    k = sub.add_parser("keygen", help="a new config authority key (KEY) and its public line (KEY.pub)")
    k.add_argument("--key", required=True, help="private key file to create (PEM, mode 600)")
    k.add_argument("--key-id", type=int, default=1, help="key id the terminals know it by (rotation)")
    m = sub.add_parser("make", help="sign a fleet bundle")
    m.add_argument("kind", choices=("fares", "ticket-keys", "ride-revoked", "profile", "roster"))
    m.add_argument("--key", required=True, help="the authority's private key (KEY.pub beside it)")
    m.add_argument("--version", type=int, required=True, help="bundle version: terminals only move up")
    m.add_argument("--out", required=True, help="bundle file to write (collector --bundles DIR serves DIR/*.zfb)")
    m.add_argument("--fare", action="append", default=[], metavar="qr|emv|ticket|ride=FEN",
                   help="fares: one per kind")
    m.add_argument("--ticket-key", action="append", default=[], metavar="ISSUER:KID", help="ticket-keys: trusted")
    m.add_argument("--revoke", action="append", default=[], metavar="ISSUER:KID",
                   help="ticket-keys: revoked key; ride-revoked: a revoked ride-code issuer key")
    m.add_argument("--revoke-ticket", action="append", default=[], metavar="ISSUER:TICKETHEX",
                   help="ticket-keys: one revoked ticket (8-byte id as hex)")
    m.add_argument("--profile", metavar="FILE.json", help="profile: the terminal profile (protocol/SPEC.md)")
    m.add_argument("--keys-dir", default=tickets.DEFAULT_DIR, help="ticket-keys: where issuer keys are kept")
    m.add_argument("--group", help="roster: the terminal group it is addressed to (the school's buses)")
    m.add_argument("--issuer", type=int, default=1, help="roster: the ticket issuer of the school's passes")
    m.add_argument("--pass", dest="pass_id", action="append", default=[], metavar="ID[:WEEKDAYS:FROM:TO]",
                   help="roster: a student pass (ticket id, 8 bytes hex), optionally its own days")
    m.add_argument("--weekdays", default="mon-fri", help="roster: days of the week passes ride (mon-fri)")
    m.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="roster: first day (default today)")
    m.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="roster: last day (default a year on)")
    t = sub.add_parser("techkey", help="a technician's console key and certificate, signed by the config key")
    t.add_argument("--key", required=True, help="the authority's private key (KEY.pub beside it)")
    t.add_argument("--name", required=True, help="who: 1-32 printable characters, no spaces (in terminal logs)")
    t.add_argument("--role", choices=sorted(ROLE_NAMES), default="technician",
                   help="technician: every console command; viewer: read-only commands")
    t.add_argument("--days", type=int, default=30, help="valid for this many days")
    t.add_argument("--out", required=True, help="technician key file to create (mode 600)")
    s = sub.add_parser("show", help="print a bundle as JSON")
    s.add_argument("file")
    s.add_argument("--config-keys", metavar="KEY.pub", help="also check the signature with these public keys")
