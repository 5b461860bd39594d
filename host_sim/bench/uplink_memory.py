"""`python -m host_sim bench uplink-memory --json`: bytes the terminal allocates per uplink frame, on MicroPython.

Runs host_sim/device/bench_uplink_memory.py in the MicroPython unix port: a terminal Peer and a host
Peer in memory, `--frames` RECORDS frames sent and their ACKs received per transport (serial; the
SIMCom and Quectel modem receive paths over a scripted AT stream).  Per transport:
- alloc_per_frame_sent / alloc_per_frame_received: bytes allocated (micropython.mem_total deltas)
  by the terminal's side of one frame, on average: transient allocations the GC must reclaim;
- heap_before / heap_warm / heap_after: gc.mem_alloc() after a collection, before the frames, after
  the first tenth and after all of them (flat: heap_after == heap_warm, nothing accumulates per frame).
"""

from host_sim import micropython

TRANSPORTS = ("serial", "simcom", "quectel")


def run(args):
    return micropython.run_program("bench_uplink_memory", [args.frames, *TRANSPORTS], heap=args.heap)


def add_arguments(parser):
    parser.add_argument("--frames", type=int, default=1000, help="frames sent (and ACKs received) per transport")
    parser.add_argument("--heap", default="192k", help="MicroPython heap, as on the virtual board")
