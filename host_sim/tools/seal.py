"""`python -m host_sim seal keygen --out DIR`: the collector's seal key pair (SPEC.md "Sealed card data").

Writes DIR/seal.pem (RSA-2048 private key, mode 600: `collector --seal-key`, `acquirer --seal-key`) and
DIR/seal.pub.pem (its public key: `provision --seal-key`), never overwriting either.  Prints JSON with
both paths and the key's fingerprint, the 8 bytes each key record names.
"""

import json
import os
import sys

PRIVATE = "seal.pem"
PUBLIC = "seal.pub.pem"


def keygen(out):
    from host_sim.backend import sealing
    from protocol import seal

    private, public = os.path.join(out, PRIVATE), os.path.join(out, PUBLIC)
    for path in (private, public):
        if os.path.exists(path):
            raise FileExistsError("%s exists: a seal key is never overwritten" % path)
    key = sealing.generate()
    if not sealing.write_new(private, sealing.private_pem(key)) or \
            not sealing.write_new(public, sealing.public_pem(key), 0o644):
        raise FileExistsError("%s appeared meanwhile" % out)
    return {"private_key": private, "public_key": public,
            "fingerprint": seal.fingerprint(key.public_key().public_numbers().n).hex()}


def main(args):
    try:
        print(json.dumps(keygen(args.out)))
    except OSError as e:
        print("seal keygen: %s" % e, file=sys.stderr)
        return 1
    return 0


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    k = sub.add_parser("keygen", help="a new collector seal key pair: DIR/seal.pem and DIR/seal.pub.pem")
    k.add_argument("--out", required=True, metavar="DIR", help="directory to write the key pair into")
