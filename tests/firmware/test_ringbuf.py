"""The byte ring buffer on both runtimes: wrap-around, a full ring refusing bytes, partial reads."""

import random


def body_replay(size, steps):
    """Apply ("put", bytes) / ("read", n) steps; per step what put took or what read returned."""
    from firmware.ringbuf import RingBuffer

    ring = RingBuffer(size)
    out = []
    for op, arg in steps:
        if op == "put":
            out.append(ring.put(memoryview(arg)))
        else:
            buf = bytearray(arg)
            n = ring.readinto(buf)
            out.append(bytes(buf[:n]))
        out.append((len(ring), ring.room()))
    return out


def model_replay(size, steps):
    """The same steps on a plain bytearray: what the ring must match."""
    held = bytearray()
    out = []
    for op, arg in steps:
        if op == "put":
            taken = arg[: size - len(held)]
            held += taken
            out.append(len(taken))
        else:
            out.append(bytes(held[:arg]))
            del held[:arg]
        out.append((len(held), size - len(held)))
    return out


def test_wraps_around_and_refuses_what_does_not_fit(runtime):
    steps = [("put", b"abcdef"), ("read", 4), ("put", b"ghijkl"), ("read", 3), ("put", b"mnopqrs"),
             ("read", 20), ("read", 5), ("put", b""), ("put", b"0123456789")]
    assert runtime.run(body_replay, 8, steps) == model_replay(8, steps)


def test_matches_a_bytearray_for_random_traffic(runtime):
    rng = random.Random(3)
    steps = []
    for _ in range(200):
        if rng.random() < 0.5:
            steps.append(("put", rng.randbytes(rng.randrange(0, 40))))
        else:
            steps.append(("read", rng.randrange(0, 40)))
    assert runtime.run(body_replay, 32, steps) == model_replay(32, steps)
