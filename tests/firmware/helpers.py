"""What several firmware tests share: test bodies that run on both runtimes (the `runtime` fixture ships
each body's source to MicroPython, so a body imports what it needs inside itself)."""

import hashlib

from host_sim.tools import bundle as host_bundle
from protocol import bundle


def body_steps(root, key, steps, probes, config_lines=None):
    """Run ("offer", msg) / ("chunk", msg) / ("reboot",) / ("full heap",) steps; record each answer and
    the list state.  "full heap": the next deny-list apply raises MemoryError (recorded as "memory").
    With `config_lines` (the config authority's keys, written to keys/config) also what on_activate got
    for fleet bundles and what a booting terminal reads back (tests/firmware/test_config_fleet.py)."""
    import os

    from firmware import denylist, fsutil
    from firmware.config import fleet, receiver, trust

    if config_lines is not None:
        fsutil.makedirs(root + "/keys")
        with open(root + "/keys/config", "w") as f:
            f.write("\n".join(config_lines) + "\n")
    activated = []

    def on_activate(kind, content):
        if kind == 3:
            activated.append([kind, sorted(content.items())])
        elif kind == 6:
            activated.append([kind, content["profile"], content["group"]])
        elif kind == 7:
            activated.append([kind, content.group, content.issuer, content.count])
        else:
            activated.append([kind, sorted(content.keys.items()), sorted(content.revoked),
                              sorted(content.revoked_tickets)])

    def fresh():
        return receiver.ConfigReceiver(root, denylist.DenyList(root + "/config/deny.bin"), key, on_activate)

    r = fresh()
    out = []
    for step in steps:
        try:
            if step[0] == "full heap":
                apply = r.deny.apply_staged

                def full(*args, apply=apply, deny=r.deny):
                    deny.apply_staged = apply
                    raise MemoryError("memory allocation failed")

                r.deny.apply_staged = full
                out.append(None)
            elif step[0] == "reboot":
                r = fresh()
                out.append(None)
            elif step[0] == "offer":
                out.append(list(r.on_offer(step[1])))
            else:
                ok, reply = r.on_chunk(step[1])
                out.append([ok, list(reply) if reply else None])
        except receiver.Refused as e:
            out.append("refused: " + str(e))
        except MemoryError:
            out.append("memory")
    ring, _ = trust.load(root)
    boot = {"fares": sorted(fleet.load_fares(root).items()), "keys": sorted(ring.keys),
            "tickets": sorted(ring.revoked_tickets), "fares_version": fleet.version(root, 3),
            "keys_version": fleet.version(root, 2), "staged": sorted(os.listdir(root + "/config")),
            "activated": activated, "profile": fleet.load_profile(root), "profile_version": fleet.version(root, 6),
            "roster_version": fleet.version(root, 7)}
    return out, r.deny.version, [r.deny.contains(t) for t in probes], boot


def roomy(runtime):
    """The micropython runtime with a 192 KB heap (the others as they are)."""
    if runtime.name != "micropython":
        return runtime
    from runtimes import MicroPythonRuntime

    return MicroPythonRuntime(heap="192k")


# -- fleet bundles through the config receiver (tests/firmware/test_config_*.py) ----------------------

KEY = bytes(range(32))  # the device key


def n_of(key):
    return key.public_key().public_numbers().n


def make(key, kind, version, body, kid=1):
    return host_bundle.sign(key, kid, kind, version, body, issued=1_800_000_000)


def offer(data, kind, version, digest=None):
    digest = digest or hashlib.sha256(data).digest()
    sig = bundle.signature(bundle.config_key(KEY), kind, version, len(data), digest)
    return {"kind": kind, "version": version, "size": len(data), "digest": digest, "signature": sig}


def chunk(data, kind, version, offset, n=100000):
    return {"kind": kind, "version": version, "offset": offset, "data": data[offset:offset + n]}


def steps_run(runtime, tmp_path, lines, steps):
    """(answers, what on_activate got, what a booting terminal reads back): test_config.body_steps."""
    out, _, _, boot = runtime.run(body_steps, str(tmp_path), KEY, steps, [], lines)
    return out, boot.pop("activated"), boot


def config_lines(keys):
    return ["key 0 1 %0512x" % n_of(keys["authority"])]
