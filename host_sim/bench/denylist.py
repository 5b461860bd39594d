"""`python -m host_sim bench denylist [--entries N] --json`: the deny list at county scale on MicroPython.

Runs host_sim/device/bench_denylist.py in the MicroPython unix port with the virtual board's littlefs
partition on a fresh flash image (the board module mounts it as the terminal does): the list is
installed through sorted bundles, then deltas go into the overlay, lookups are timed with base and
overlay in use, one delta is merged into a new base, the heap a loaded list holds is measured, and an
RSA-2048 verify of the same run gives the reference (lookup_to_rsa: one lookup as a share of it).
Target (issue 14): lookup <= 1 ms with 200 000 entries, heap independent of the list's size.
"""

import hashlib
import os
import tempfile

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from host_sim import micropython

KEYS = ("entries", "lookup_us", "apply_delta_us", "heap_bytes", "flash_bytes", "rsa_verify_us")


def add_arguments(parser):
    parser.add_argument("--entries", type=int, default=200000, help="tokens on the list (default 200000)")
    parser.add_argument("--lookups", type=int, default=3000, help="timed lookups (default 3000)")
    parser.add_argument("--delta", type=int, default=1000,
                        help="additions per timed delta, with a tenth as many removals (default 1000)")
    parser.add_argument("--heap", default="192k", help="MicroPython heap (default 192k, a board's)")


def run(args):
    if args.entries < 1000 or args.delta < 10 or args.lookups < 3:
        raise SystemExit("bench denylist: --entries must be at least 1000, --delta 10, --lookups 3")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = b"deny list bench"
    sig = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    with tempfile.TemporaryDirectory(prefix="zhifu-deny-") as tmp:
        keyfile = os.path.join(tmp, "rsa")
        with open(keyfile, "w") as f:
            f.write("%d\n%s\n%s\n" % (key.public_key().public_numbers().n, sig.hex(),
                                      hashlib.sha256(message).hexdigest()))
        result = micropython.run_program("bench_denylist", [args.entries, args.lookups, args.delta, keyfile],
                                         heap=args.heap, board=True, env={"ZF_FLASH": os.path.join(tmp, "flash.img")},
                                         timeout=None)
    out = {k: result.pop(k) for k in KEYS}
    out["lookup_to_rsa"] = round(out["lookup_us"]["median"] / out["rsa_verify_us"], 4)
    out.update(result)
    return out
