"""`python -m host_sim bench frames --json`: what one uplink frame costs the terminal's CPU on MicroPython.

Times, per frame of a 272-byte payload (279 bytes on the wire, near the firmware's 288-byte maximum) in
the MicroPython unix port (host_sim/device/bench_frames.py):
- encode: frame.encode (CRC-32, COBS, delimiter) of a payload;
- decode: FrameReader.feed of the same frame (delimiter search, COBS, CRC-32);
- aes_ctr: the AES-CTR pass that encrypts or decrypts the frame body;
- hmac: the HMAC-SHA256 of the frame MAC;
- seal_open: the whole secured path, protocol.session seal on one side and open on the other.
`frame_us` is the median sum encode + decode + 2 x aes_ctr + 2 x hmac: one frame sent and one received.
"""

from host_sim import micropython


def run(args):
    runtime, wire_bytes, result = micropython.run_program("bench_frames", [args.iterations], heap=args.heap)
    m = {k: v["median_us"] for k, v in result.items()}
    result.update(runtime=runtime, wire_bytes=wire_bytes,
                  frame_us=m["encode"] + m["decode"] + 2 * m["aes_ctr"] + 2 * m["hmac"])
    return result


def add_arguments(parser):
    parser.add_argument("--iterations", type=int, default=300, help="timed runs of each operation")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
