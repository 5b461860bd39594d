"""`python -m host_sim qr decode|make|keyring`: decode any QR payload the terminal may see, issue test
payloads and pictures.

decode prints one JSON object (and exits 1, with one line on stderr saying why, when it is refused):
{"format": "emv-cpm" | "emv-mpm" | "ticket" | "payment-code" | "unknown", "valid", "error", "tlv", "fields"} plus
"crc_ok" for MPM. CPM "tlv" is the BER-TLV tree with tags as upper-case hex and values as hex; MPM "tlv"
is the ID-length-value tree with the values as text. PAN-bearing values (5A, 57, 9F6B) are masked (first
6 and last 4 digits kept, the expiry kept, the rest "*") unless --reveal. A CPM code's "fields" say in
"check" what a terminal's offline checks make of it now ("ok", or the reason it would decline: "card
expired", "code declined", ...). A ticket's signature is checked against the issuer keys this tool keeps
(or a keyring file given with --keys).  A ride code ("format": "ride-code") shows its chain (root, issuer
and user certificates with their validity), its dynamic data and "verdict", the terminal's verdict now
against the test roots and revocations (host_sim/tools/ridecodes.py) or a roots file given with
--ride-roots and --revoke-ride ISSUER:KID.
"""

import binascii
import json
import struct
import sys
import time

from host_sim import arguments
from host_sim.tools import tickets
from protocol import cpm, mpm, paycode, record, ridecode, ticket, tlv

PAN_TAGS = (0x5A, 0x57, 0x9F6B)
CPM_PROFILES = ("unionpay-hce", "unionpay-card", "visa", "mastercard")  # host_sim/emulators/wallet.ACCOUNTS


def mask_digits(hexdigits):
    """A PAN or track-2 hex string with all but the first 6 and last 4 account digits (and the expiry
    after a D separator) replaced by '*'."""
    sep = hexdigits.find("D")
    pan = hexdigits if sep < 0 else hexdigits[:sep]
    pad = pan.endswith("F")
    digits = pan[:-1] if pad else pan
    keep = 10 if len(digits) >= 13 else max(0, len(digits) - 6)
    head, tail = (6, 4) if keep == 10 else (0, 0)
    masked = digits[:head] + "*" * (len(digits) - head - tail) + (digits[len(digits) - tail :] if tail else "")
    if pad:
        masked += "F"
    if sep < 0:
        return masked
    rest = hexdigits[sep + 1 :]
    return masked + "D" + rest[:4] + "*" * max(0, len(rest) - 4)


def tlv_tree(objects, reveal):
    out = []
    for tag, value, children in objects:
        node = {"tag": "%X" % tag}
        if children is not None:
            node["children"] = tlv_tree(children, reveal)
        else:
            text = binascii.hexlify(value).decode().upper()
            node["value"] = text if reveal or tag not in PAN_TAGS else mask_digits(text)
        out.append(node)
    return out


def mpm_tree(objects):
    out = []
    for fid, value, children in objects:
        node = {"tag": fid}
        if children is not None:
            node["children"] = mpm_tree(children)
        else:
            node["value"] = value
        out.append(node)
    return out


def _decode_cpm(text, reveal, now):
    result = {"format": "emv-cpm", "valid": False, "error": None, "tlv": [], "fields": {}}
    try:
        objects = cpm.decode(text)
    except cpm.CpmError as e:
        result["error"] = str(e)
        try:  # show what TLV there is, for diagnosis
            result["tlv"] = tlv_tree(tlv.decode(binascii.a2b_base64(text)), reveal)
        except (ValueError, binascii.Error):
            pass
        return result
    result["tlv"] = tlv_tree(objects, reveal)
    try:
        result["fields"] = cpm.fields(objects)
    except cpm.CpmError as e:
        result["error"] = str(e)
        return result
    result["fields"]["check"] = record.REASON_TEXT[cpm.check(cpm.payment_data(objects), now)]
    try:
        account = cpm.account_number(objects)
        result["fields"]["account"] = account if reveal else mask_digits(account)
        result["valid"] = True
    except cpm.CpmError as e:
        result["error"] = str(e)
    return result


def _decode_mpm(text):
    result = {"format": "emv-mpm", "valid": False, "error": None, "tlv": [], "fields": {}, "crc_ok": False}
    try:
        objects, crc_ok = mpm.decode(text)
    except mpm.MpmError as e:
        result["error"] = str(e)
        return result
    result.update(tlv=mpm_tree(objects), fields=mpm.fields(objects), crc_ok=crc_ok, valid=crc_ok)
    if not crc_ok:
        result["error"] = "CRC mismatch: payload says %s, computed %s" % (
            objects[-1][1], mpm.crc_text(text.encode()[:-4]))
    return result


def keyring_for(path=None, directory=tickets.DEFAULT_DIR):
    ring = ticket.Keyring()
    if path:
        with open(path, encoding="ascii") as f:
            for line in f:
                ring.load_line(line)
        return ring
    for issuer, key_id, key in tickets.stored_keys(directory):
        ring.load_line(tickets.keyring_line(key, issuer, key_id))
    return ring


def _decode_ticket(text, keys_path, now):
    result = {"format": "ticket", "valid": False, "error": None, "tlv": [], "fields": {}}
    try:
        fields, _, _ = ticket.parse(text)
    except ticket.TicketError as e:
        result["error"] = str(e)
        return result
    shown = dict(fields)
    shown["ticket_id"] = binascii.hexlify(fields["ticket_id"]).decode()
    shown["holder"] = binascii.hexlify(fields["holder"]).decode()
    for k in ("valid_from", "valid_to"):
        shown[k + "_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fields[k]))
    result["fields"] = shown
    try:
        keyring_for(keys_path).verify(text)
        shown["signature"] = "ok"
        ticket.check_window(fields, now)
        shown["window"] = "valid"
        result["valid"] = True
    except ticket.TicketError as e:
        if "signature" not in shown:
            shown["signature"] = e.code
        else:
            shown["window"] = e.code
        result["error"] = str(e)
    return result


def _decode_paycode(text, reveal):
    """A numeric payment code (protocol/paycode.py): its family and the code masked (first and last 4
    digits) unless --reveal; nothing in it can be checked offline, so it is valid when well formed."""
    family = paycode.family_of(text)
    name = paycode.NAMES[family]
    digits = text.strip()
    shown = digits if reveal else paycode.masked(digits)
    fields = {"family": name, "digits": shown, "length": len(digits),
              "authorisation": "needs online authorisation"}
    if paycode.classify(text) is None:
        shortest, longest = paycode.lengths(family)
        want = "%d" % shortest if shortest == longest else "%d to %d" % (shortest, longest)
        return {"format": "payment-code", "valid": False, "tlv": [], "fields": fields,
                "error": "a %s payment code has %s digits, this one %d" % (name, want, len(digits))}
    return {"format": "payment-code", "valid": True, "error": None, "tlv": [], "fields": fields}


def _utc(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def ride_roots(path=None):
    """{root id: (alg, key)}: the roots file at `path`, else the test roots."""
    from host_sim.tools import ridecodes

    text = ridecodes.root_lines() if path is None else open(path, encoding="ascii").read()
    roots = {}
    for line in text.splitlines():
        entry = ridecode.parse_root_line(line)
        if entry is not None:
            roots[entry[0]] = (entry[1], entry[2])
    return roots


def _decode_ride(text, now, roots_path=None, revoked=None):
    from host_sim.tools import ridecodes

    result = {"format": "ride-code", "valid": False, "error": None, "tlv": [], "fields": {}}
    try:
        f = ridecode.decode(text)
        roots = ride_roots(roots_path)
    except ridecode.RideCodeError as e:
        result["error"] = str(e)
        result["fields"]["verdict"] = e.code
        return result
    if revoked is None:
        revoked = set() if roots_path else ridecodes.TEST_REVOKED
    root = roots.get(f["root"])
    result["fields"] = {
        "root": {"id": f["root"], "alg": ridecode.ALG_NAMES[f["alg"]], "trusted": root is not None},
        "issuer": {"id": f["issuer"], "key_id": f["issuer_key_id"], "alg": ridecode.ALG_NAMES[f["issuer_alg"]],
                   "valid_from_utc": _utc(f["issuer_from"]), "valid_to_utc": _utc(f["issuer_to"]),
                   "revoked": (f["issuer"], f["issuer_key_id"]) in revoked},
        "user": {"id": f["user_id"].hex(), "alg": ridecode.ALG_NAMES[f["user_alg"]],
                 "valid_from_utc": _utc(f["user_from"]), "valid_to_utc": _utc(f["user_to"])},
        "code": {"generated_utc": _utc(f["generated"]), "age_s": now - f["generated"], "counter": f["counter"],
                 "product": f["product"]},
        "token": ridecode.token(f).hex(),
    }
    verdict = ridecode.Verifier(roots, revoked).check_fields(f, now)
    result["fields"]["verdict"] = verdict
    result["valid"] = verdict == ridecode.OK
    if not result["valid"]:
        result["error"] = verdict
    return result


def decode(text, reveal=False, keys_path=None, now=None, ride_roots_path=None, ride_revoked=None):
    """The decode JSON object for one payload (str)."""
    now = int(time.time()) if now is None else now
    if ridecode.is_ride_code(text):
        return _decode_ride(text, now, ride_roots_path, ride_revoked)
    if cpm.is_cpm(text):
        return _decode_cpm(text, reveal, now)
    if ticket.is_ticket(text):
        return _decode_ticket(text, keys_path, now)
    if text.startswith("0002"):
        return _decode_mpm(text)
    if paycode.family_of(text) is not None:
        return _decode_paycode(text, reveal)
    return {"format": "unknown", "valid": False,
            "error": "not an EMV CPM, EMV MPM, ticket, ride-code or payment-code payload",
            "tlv": [], "fields": {}}


def make(args):
    if args.kind == "cpm":
        from host_sim.emulators import wallet

        cryptogram = bytes.fromhex(args.cryptogram) if args.cryptogram else None
        text = wallet.code(args.profile, args.pan, args.expiry, args.atc, forge=args.forge, cryptogram=cryptogram)
    elif args.kind == "paycode":
        from host_sim import paycodes

        text = paycodes.make(paycode.FAMILY_OF_NAME[args.family], invalid=args.invalid)
    elif args.kind == "mpm":
        pairs = [("01", "12" if args.amount else "11"), ("15", args.account), ("52", args.mcc), ("53", "156")]
        if args.amount:
            pairs.append(("54", args.amount))
        pairs += [("58", "CN"), ("59", args.name), ("60", args.city)]
        if args.reference:
            pairs.append(("62", [("05", args.reference)]))
        text = mpm.encode(pairs)
    elif args.kind == "ride":
        text = _make_ride(args)
    else:
        key = tickets.load_or_create(args.issuer, args.key_id, args.keys_dir)
        valid_from = int(time.time()) - 60 if args.valid_from is None else args.valid_from
        valid_to = valid_from + int(args.days * 86400) if args.valid_to is None else args.valid_to
        ticket_id = bytes.fromhex(args.ticket_id) if args.ticket_id else tickets.new_ticket_id()
        text = tickets.issue(key, args.issuer, args.key_id, ticket_id, product=args.product, valid_from=valid_from,
                             valid_to=valid_to, entries=args.entries, holder=args.holder.encode(),
                             party=args.party)
    return text


def _make_ride(args):
    from host_sim.tools import ridecodes

    alg = {"sm2": ridecode.ALG_SM2, "p256": ridecode.ALG_P256}[args.alg]
    now = int(time.time())
    user = args.user.encode()
    if len(user) > 8:
        raise SystemExit("qr make ride: --user is at most 8 characters")
    return ridecodes.issue(alg, now, user_id=user.ljust(8, b"\0"), counter=args.counter, product=args.product,
                           generated=now - args.age, key_id=ridecodes.REVOKED_KEY_ID if args.revoked else 1,
                           user_to=now - 86400 if args.expired else None,
                           user_from=now - 2 * 86400 if args.expired else None)


def _revoked(specs):
    out = set()
    for spec in specs:
        issuer, _, kid = spec.partition(":")
        if not (issuer.isdigit() and kid.isdigit()):
            raise SystemExit("qr decode: --revoke-ride wants ISSUER:KID, got %r" % spec)
        out.add((int(issuer), int(kid)))
    return out


def main(args):
    if args.action == "ride-roots":
        from host_sim.tools import ridecodes

        print(ridecodes.root_lines(), end="")
        return 0
    if args.action == "decode":
        try:
            result = decode(args.payload, reveal=args.reveal, keys_path=args.keys, ride_roots_path=args.ride_roots,
                            ride_revoked=_revoked(args.revoke_ride) if args.revoke_ride else None)
        except (OSError, UnicodeError) as e:
            print("qr decode: %s" % e, file=sys.stderr)
            return 1
        print(json.dumps(result, indent=None if args.json else 2, ensure_ascii=False))
        if result["valid"]:
            return 0
        print("qr decode: refused: %s" % result["error"], file=sys.stderr)
        return 1
    if args.action == "keyring":
        for spec in args.key:
            issuer, key_id = (int(x) for x in spec.split(":"))
            key = tickets.load_or_create(issuer, key_id, args.keys_dir)
            print(tickets.keyring_line(key, issuer, key_id))
        for spec in args.revoke:
            issuer, key_id = (int(x) for x in spec.split(":"))
            print("revoked %d %d" % (issuer, key_id))
        return 0
    try:
        text = make(args)
    except (ticket.TicketError, struct.error) as e:  # a ticket field out of its range (--party 0, --entries 300)
        print("qr make: %s" % e, file=sys.stderr)
        return 1
    print(text)
    if args.png:
        from host_sim.tools import qr_image

        qr_image.make_image(text, args.png)
        print("wrote " + args.png, file=sys.stderr)
    return 0


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    d = sub.add_parser("decode", help="decode a payload; JSON")
    d.add_argument("payload")
    d.add_argument("--json", action="store_true", help="one line of JSON")
    d.add_argument("--reveal", action="store_true", help="show PAN-bearing values in clear")
    d.add_argument("--keys", type=arguments.existing_file,
                   help="keyring file for ticket signatures (default: the issuer keys kept here)")
    d.add_argument("--ride-roots", type=arguments.existing_file,
                   help="ride-code roots file (default: the test roots, `qr ride-roots`)")
    d.add_argument("--revoke-ride", action="append", default=[], metavar="ISSUER:KID",
                   help="a revoked ride-code issuer key (default with the test roots: the test issuers' key 2)")
    m = sub.add_parser("make", help="issue a test payload (and --png picture)")
    m.add_argument("kind", choices=("cpm", "mpm", "ticket", "paycode", "ride"))
    m.add_argument("--png", help="also render the QR code to this PNG file")
    m.add_argument("--profile", default="unionpay-hce", choices=CPM_PROFILES,
                   help="cpm: the test issuer profile whose keys make the cryptogram (host_sim/issuers.py)")
    m.add_argument("--pan", help="cpm: account or token digits (default: the profile's test account)")
    m.add_argument("--expiry", default="3012", help="cpm: YYMM")
    m.add_argument("--atc", type=int, default=1, help="cpm: transaction counter")
    m.add_argument("--cryptogram", help="cpm: 9F26 as hex instead of the one the profile's keys compute")
    m.add_argument("--forge", action="store_true", help="cpm: a wrong cryptogram, every other rule kept: "
                   "the terminal accepts it offline, the issuer declines it")
    m.add_argument("--family", default="unionpay", choices=("unionpay", "wechat", "alipay"),
                   help="paycode: which wallet's numeric code (host_sim/paycodes.py)")
    m.add_argument("--invalid", action="store_true", help="paycode: a wrong check: the test issuer declines it")
    m.add_argument("--name", default="YIYUAN BUS 12", help="mpm: merchant name")
    m.add_argument("--city", default="YIYUAN", help="mpm: merchant city")
    m.add_argument("--account", default="12345678123456781234567890123", help="mpm: UnionPay merchant (15)")
    m.add_argument("--mcc", default="4111", help="mpm: merchant category code")
    m.add_argument("--amount", help="mpm: amount (makes a dynamic code)")
    m.add_argument("--reference", help="mpm: reference label (62/05)")
    m.add_argument("--issuer", type=int, default=1, help="ticket: issuer id")
    m.add_argument("--key-id", type=int, default=1, help="ticket: key id (made and kept on first use)")
    m.add_argument("--keys-dir", default=tickets.DEFAULT_DIR, help="ticket: where issuer keys are kept")
    m.add_argument("--ticket-id", help="ticket: 8 bytes as hex (default random)")
    m.add_argument("--product", type=int, default=1)
    m.add_argument("--entries", type=int, default=1, help="ticket: entries allowed (0 = unlimited)")
    m.add_argument("--party", type=int, default=1,
                   help="ticket: people each entry admits (over 1: a group ticket, version 2)")
    m.add_argument("--valid-from", type=int, help="ticket: seconds since 1970 (default now - 60 s)")
    m.add_argument("--valid-to", type=int, help="ticket: seconds since 1970 (default valid-from + --days)")
    m.add_argument("--days", type=float, default=1.0)
    m.add_argument("--holder", default="", help="ticket: holder reference (opaque, <= 32 bytes)")
    m.add_argument("--alg", choices=("sm2", "p256"), default="sm2", help="ride: the chain's algorithm")
    m.add_argument("--user", default="RIDER001", help="ride: user id (at most 8 characters)")
    m.add_argument("--counter", type=int, default=1, help="ride: the code's counter")
    m.add_argument("--age", type=int, default=0, help="ride: generated this many seconds ago")
    m.add_argument("--expired", action="store_true", help="ride: the user certificate expired yesterday")
    m.add_argument("--revoked", action="store_true",
                   help="ride: signed under the test issuer's key %d, which the test revocations list" % 2)
    sub.add_parser("ride-roots", help="print the test ride-code roots (provision --ride-roots FILE)")
    k = sub.add_parser("keyring", help="print terminal keyring lines (/flash/keys/tickets)")
    k.add_argument("--key", action="append", default=[], metavar="ISSUER:KID", help="a trusted key")
    k.add_argument("--revoke", action="append", default=[], metavar="ISSUER:KID", help="a revoked key id")
    k.add_argument("--keys-dir", default=tickets.DEFAULT_DIR)
