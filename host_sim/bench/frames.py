"""`python -m host_sim bench frames --json`: what one uplink frame costs the terminal's CPU on MicroPython.

Times, per frame of a 272-byte payload (279 bytes on the wire, near the firmware's 288-byte maximum) in
the MicroPython unix port:
- encode: frame.encode (CRC-32, COBS, delimiter) of a payload;
- decode: FrameReader.feed of the same frame (delimiter search, COBS, CRC-32);
- aes_ctr: the AES-CTR pass that encrypts or decrypts the frame body;
- hmac: the HMAC-SHA256 of the frame MAC;
- seal_open: the whole secured path, protocol.session seal on one side and open on the other.
`frame_us` is the median sum encode + decode + 2 x aes_ctr + 2 x hmac: one frame sent and one received.
"""

from host_sim.bench import mp as bench_mp

_SCRIPT = """
import json, time
from protocol import crypto, frame, link, session
n = %d
payload = bytes((i * 7) & 0xFF for i in range(frame.MAX_PAYLOAD))[:272]
wire = frame.encode(payload)
reader = frame.FrameReader()
key, nonce = bytes(range(16)), bytes(12)
mac_key = bytes(range(32))
def timed(fn):
    out = []
    for _ in range(n):
        t0 = time.ticks_us()
        fn()
        out.append(time.ticks_diff(time.ticks_us(), t0))
    return stats(out)
result = {"encode": timed(lambda: frame.encode(payload)),
          "decode": timed(lambda: reader.feed(wire)),
          "aes_ctr": timed(lambda: crypto.aes_ctr(key, nonce, payload)),
          "hmac": timed(lambda: crypto.hmac_sha256(mac_key, payload))}
th = bytes(32)
a, b = session.Session(mac_key, session.ROLE_TERMINAL, th), session.Session(mac_key, session.ROLE_HOST, th)
clear = bytearray(len(payload) - session.OVERHEAD)
link.pack_header(clear, link.RECORDS, 0, 1, 0)
result["seal_open"] = timed(lambda: b.open(a.seal(clear)))
print("RESULT " + json.dumps([runtime_name(), len(wire), result]))
"""


def run(args):
    runtime, wire_bytes, result = bench_mp.run(_SCRIPT % args.iterations, args.heap)
    m = {k: v["median_us"] for k, v in result.items()}
    result.update(runtime=runtime, wire_bytes=wire_bytes,
                  frame_us=m["encode"] + m["decode"] + 2 * m["aes_ctr"] + 2 * m["hmac"])
    return result


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
