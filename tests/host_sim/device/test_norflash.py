"""host_sim/device/norflash.py, the journal's test chip, on both runtimes: NOR program semantics (AND), page
program counting, erase, and power cuts that tear a program or an erase and then keep the chip dead."""


def body_nor(ops):
    from host_sim.device.norflash import NorFlash, PowerCut

    dev = NorFlash(2)
    out = []
    for op in ops:
        name = op[0]
        try:
            if name == "prog":
                dev.writeblocks(op[1], op[3], op[2])
                out.append((dev.programs, dev.erases))
            elif name == "read":
                buf = bytearray(op[3])
                dev.readblocks(op[1], buf, op[2])
                out.append(bytes(buf))
            elif name == "erase":
                dev.ioctl(6, op[1])
                out.append((dev.programs, dev.erases))
            elif name == "cut":
                dev.cut_after = op[1]
                out.append(None)
            elif name == "reboot":
                dev.reboot()
                out.append(None)
            elif name == "geometry":
                out.append((dev.ioctl(4, 0), dev.ioctl(5, 0)))
        except PowerCut:
            out.append("cut")
    return out


def test_programs_and_semantics(sim_runtime):
    got = sim_runtime.run(
        body_nor,
        [
            ("geometry",),
            ("prog", 0, 10, b"\x0f\xf0"),
            ("prog", 0, 10, b"\xf3\x3f"),
            ("read", 0, 9, 4),
            ("prog", 0, 250, bytes(12)),
            ("read", 0, 249, 14),
            ("erase", 0),
            ("read", 0, 10, 2),
            ("prog", 1, 0, bytes(4096)),
        ],
    )
    assert got[0] == (2, 4096)
    assert got[1] == (1, 0) and got[2] == (2, 0)
    assert got[3] == b"\xff\x03\x30\xff"  # old AND new: a program only clears bits
    assert got[4] == (4, 0)  # 12 bytes across a page boundary: two page programs
    assert got[5] == b"\xff" + bytes(12) + b"\xff"
    assert got[6] == (4, 1) and got[7] == b"\xff\xff"
    assert got[8] == (20, 1)  # a whole block: 16 pages


def test_a_cut_tears_the_operation_and_the_chip_stays_dead_until_reboot(sim_runtime):
    data = bytes(range(200))
    for _ in range(3):  # the torn part is random: a prefix, or some of the bits
        got = sim_runtime.run(
            body_nor,
            [
                ("prog", 0, 0, data),
                ("cut", 1),
                ("prog", 0, 512, data),
                ("prog", 0, 1024, data),
                ("read", 0, 0, 4),
                ("reboot",),
                ("read", 0, 512, 200),
                ("read", 0, 1024, 200),
                ("cut", 0),
                ("erase", 0),
                ("reboot",),
                ("read", 0, 0, 200),
            ],
        )
        assert got[2] == (2, 0)  # the one operation still allowed
        assert got[3] == "cut" and got[4] == "cut"  # torn, then no power at all
        assert got[6] == data
        torn = got[7]
        assert all(t & d == d for t, d in zip(torn, data))  # only bits the program would clear are cleared
        assert got[9] == "cut"
        first = got[11]
        assert all(b in (0xFF, d) for b, d in zip(first, data))  # a cut erase: a prefix erased, rest intact
