"""Each board's littlefs data partition against a county's deny list: 200 000 entries with the room a
merge needs (a second base, the staged bundle and the overlay next to the first), or the capacity the
hardware README states for a board that cannot hold it."""

import csv
import os
import re

import pytest

from host_sim.tools import build
from protocol import bundle

COUNTY = 200000
FS_OVERHEAD = 64 * 1024  # littlefs metadata pairs, directories, keys, config bundles, the event log
OVERLAY_MAX = 4096  # firmware/denylist_merge.py


def base_bytes(n):
    """A base table of n entries (firmware/denylist.py): header, 6-byte keys, bucket starts."""
    bits = 0
    while bits < 14 and (n >> bits) > 32:
        bits += 1
    return 24 + 6 * n + 4 * ((1 << bits) + 1)


def needed(n):
    """Flash an n-entry list needs at its worst moment: a merge writing a second base while the first,
    a full overlay and the largest bundle the collector sends are there."""
    return 2 * base_bytes(n) + (24 + 7 * OVERLAY_MAX + 4 * 129) + bundle.HEAD + 16 * bundle.BUNDLE_TOKENS + FS_OVERHEAD


def zfdata_size():
    """The ESP32-S3 gate's littlefs partition, from hardware/esp32s3_gate_partitions.csv."""
    with open(os.path.join(build.ROOT, "hardware", "esp32s3_gate_partitions.csv")) as f:
        rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    return [int(r[4], 16) for r in rows if r[0].strip() == "zfdata"][0]


def board_vfs_size(name):
    with open(os.path.join(build.ROOT, "hardware", "boards", name + ".py")) as f:
        return int(re.search(r"^VFS_SIZE = const\((\d+) \* 1024\)", f.read(), re.M).group(1)) * 1024


def test_the_table_size_at_county_scale():
    assert base_bytes(COUNTY) == 1232796  # the figure protocol/SPEC.md and the bench report


@pytest.mark.parametrize("size", [zfdata_size(), board_vfs_size("virtual")], ids=["esp32s3_gate", "virtual"])
def test_a_county_list_fits_with_room_for_a_merge(size):
    assert needed(COUNTY) <= size


def test_the_rp2040_bus_capacity_is_the_one_the_readme_states():
    size = board_vfs_size("rp2040_bus")
    capacity = max(n for n in range(0, COUNTY, 1000) if needed(n) <= size)
    assert needed(COUNTY) > size
    with open(os.path.join(build.ROOT, "hardware", "README.md")) as f:
        readme = f.read()
    assert "holds a deny list of about %d 000 entries" % (capacity // 1000) in readme, capacity
