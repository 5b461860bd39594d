"""host_sim.emulators.linkemu (simulated time) and the link benchmark's transfer over it."""

import json
import subprocess
import sys

from host_sim.bench import link as bench_link
from host_sim.emulators.linkemu import LinkEmu
from host_sim.tools import build


def test_bytes_take_ten_bits_each_plus_the_turnaround():
    emu = LinkEmu(9600, turnaround_ms=300)
    emu.write("a", 0.0, b"x" * 96)  # 0.1 s at 960 bytes/s
    emu.write("a", 0.0, b"y" * 96)  # queued behind the first: the line is busy
    assert abs(emu.tx_free_at("a") - 0.2) < 1e-9
    assert emu.receive_until(0.39) == []
    assert emu.receive_until(0.4) == [("b", b"x" * 96)]
    assert emu.receive_until(0.5) == [("b", b"y" * 96)]
    assert emu.tx_free_at("b") == 0.0  # the other direction is independent (full duplex)


def test_bit_errors_follow_the_rate_and_the_seed():
    def flipped(seed):
        emu = LinkEmu(115200, ber=1e-3, seed=seed)
        data = bytes(100_000)
        emu.write("a", 0.0, data)
        (side, got), = emu.receive_until(10.0)
        return sum(bin(b).count("1") for b in got), got

    n1, got1 = flipped(1)
    assert 650 < n1 < 950  # 800 expected
    assert flipped(1)[1] == got1 and flipped(2)[1] != got1


def test_drops_duplicates_and_reordering():
    emu = LinkEmu(115200, drop=0.3, dup=0.3, reorder=0.3, seed=3)
    for i in range(300):
        emu.write("a", i * 0.01, bytes([i % 256, i // 256]))
    got = [c for _, c in emu.receive_until(100.0)]
    seqs = [c[0] + 256 * c[1] for c in got]
    assert 150 < len(set(seqs)) < 260  # some dropped
    assert len(seqs) > len(set(seqs))  # some duplicated
    assert seqs != sorted(seqs)  # some overtaken


def test_selective_repeat_beats_stop_and_wait_and_delivers_everything():
    sr = bench_link.transfer(115200, 300, 1e-4, 128, count=600, seed=3)
    sw = bench_link.transfer(115200, 300, 1e-4, 1, count=60, seed=3)
    assert sr["records"] == 600 and sw["records"] == 60
    assert sr["crc_errors"] > 0 and sr["retransmits"] > 0
    assert sr["goodput_ratio"] > 5 * sw["goodput_ratio"]


def test_transfer_survives_drops_duplicates_and_reordering():
    r = bench_link.transfer(9600, 10, 1e-5, 16, count=120, seed=5, drop=0.05, dup=0.05, reorder=0.1)
    assert r["records"] == 120


def test_bench_link_command_prints_the_contracted_rows():
    out = subprocess.run([sys.executable, "-m", "host_sim", "bench", "link", "--json"], cwd=build.ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert len(rows) == 12
    keys = {"baud", "turnaround_ms", "ber", "goodput_ratio", "baseline_ratio", "wire_bytes_per_record",
            "record_bytes"}
    assert all(set(r) == keys for r in rows)
    assert {(r["baud"], r["turnaround_ms"], r["ber"]) for r in rows} == {
        (b, t, e) for b in (9600, 115200) for t in (10, 300) for e in (0.0, 1e-5, 1e-4)}
    for r in rows:
        assert 0 < r["baseline_ratio"] < r["goodput_ratio"] <= 1.05
        assert r["wire_bytes_per_record"] <= 1.10 * r["record_bytes"]
