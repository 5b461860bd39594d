"""The ESP32-S3 gate's partition table: partitions in bounds, aligned, not overlapping, and a ROMFS
partition the port can map that holds the board's ROMFS image."""

import csv
import os

from host_sim.tools import build

TABLE = os.path.join(build.ROOT, "hardware", "esp32s3_gate_partitions.csv")
FLASH_BYTES = 16 * 1024 * 1024  # ESP32-S3-WROOM-1-N16R8
MMU_PAGE = 64 * 1024  # esp_partition_mmap maps whole 64 KB pages


def partitions():
    with open(TABLE) as f:
        rows = [r for r in csv.reader(f) if r and not r[0].lstrip().startswith("#")]
    return {r[0].strip(): (r[1].strip(), r[2].strip(), int(r[3], 16), int(r[4], 16)) for r in rows}


def test_partitions_fit_the_flash_and_do_not_overlap():
    spans = sorted((offset, offset + size, name) for name, (_, _, offset, size) in partitions().items())
    assert spans[0][0] >= 0x9000  # bootloader and the table itself sit below
    for (_, end, name), (start, _, following) in zip(spans, spans[1:]):
        assert end <= start, "%s overlaps %s" % (name, following)
    assert spans[-1][1] <= FLASH_BYTES
    for start, end, name in spans:
        assert start % 4096 == 0 and (end - start) % 4096 == 0, name


def test_romfs_partition_is_mappable_and_holds_the_image(tmp_path):
    kind, _, offset, size = partitions()["romfs"]  # the label MicroPython's esp32 port looks up
    assert kind == "data"
    assert offset % MMU_PAGE == 0 and size % MMU_PAGE == 0
    build.build("esp32s3_gate", str(tmp_path))
    assert os.path.getsize(tmp_path / build.ROMFS_IMAGE) <= size
