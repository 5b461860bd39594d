"""`python -m host_sim bench bundle --json`: what checking and activating a fleet bundle costs on MicroPython.

Runs host_sim/device/bench_bundle.py in the MicroPython unix port (the virtual board's VM and heap)
over the real firmware/config/receiver.py, which times, per iteration, with time.ticks_us():
- rsa_verify: protocol.rsa.verify_digest alone (RSA-2048, e = 65537, pow());
- fares / ticket_keys: ConfigReceiver activation of a fully staged bundle, as the terminal does it
  when the last chunk arrives: SHA-256 of the file twice over (the offer's digest and the signed part)
  read from the file system in 259-byte pieces, the RSA signature with the key from keys/config, the
  body parsed, the version compared, the file renamed into place.  ticket_keys is the largest bundle
  the terminal takes (16 keys, 64 revoked keys, 64 revoked tickets).
The file system is the host's (tmpfs or disk), not littlefs on NOR flash: reads on a board add to this.
"""

import os
import tempfile

from host_sim import micropython
from host_sim.tools import bundle, tickets
from protocol import fleet


def _largest_ticket_keys_body():
    n = tickets.generate_key().public_key().public_numbers().n
    keys = [(1 + i // 4, i % 4, n) for i in range(fleet.MAX_KEYS)]
    revoked = [(100, i) for i in range(fleet.MAX_REVOKED)]
    revoked_tickets = [(1, i.to_bytes(8, "big")) for i in range(fleet.MAX_TICKETS)]
    return bundle.ticket_keys_body(keys, revoked, revoked_tickets)


def run(args):
    with tempfile.TemporaryDirectory() as root:
        key = os.path.join(root, "authority.pem")
        bundle.keygen(key, 1)
        signer, kid = bundle.load_signer(key)
        os.makedirs(os.path.join(root, "keys"))
        os.makedirs(os.path.join(root, "config"))
        with open(key + ".pub") as src, open(os.path.join(root, "keys", "config"), "w") as dst:
            dst.write(src.read())
        cases = []
        for name, kind, body in (("fares", fleet.KIND_FARES, bundle.fares_body({1: 350, 3: 300})),
                                 ("ticket_keys", fleet.KIND_TICKET_KEYS, _largest_ticket_keys_body())):
            path = os.path.join(root, name + ".zfb")
            data = bundle.sign(signer, kid, kind, 1, body)
            assert fleet.parse(data, _ring(key + ".pub"))["version"] == 1
            with open(path, "wb") as f:
                f.write(data)
            cases.append("%s:%d:%d:%s" % (name, kind, 1, path))
        modulus = signer.public_key().public_numbers().n
        with open(os.path.join(root, "modulus"), "w") as f:
            f.write(str(modulus))
        result = micropython.run_program("bench_bundle", [root, args.iterations, os.path.join(root, "modulus")] + cases,
                                         heap=args.heap)
    return {"runtime": result.pop("runtime"), "rsa_verify": result.pop("rsa_verify"), "fares": result["fares"],
            "ticket_keys": result["ticket_keys"]}


def _ring(pub):
    from protocol import ticket

    ring = ticket.Keyring()
    with open(pub) as f:
        for line in f:
            ring.load_line(line)
    return ring


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=50, help="timed runs of each operation")
    parser.add_argument("--heap", default="256k", help="MicroPython heap, as on the virtual board")
