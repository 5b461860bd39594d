"""A NOR flash chip in RAM, with power cuts: the journal's test and benchmark block device.

Runs on the MicroPython unix port and on CPython.  Same protocol as every board's journal partition
(readblocks / writeblocks with NOR AND semantics / ioctl 4, 5, 6), over a bytearray.  Like littlefs's
own test block device, it can cut the power: after `cut_after` further page programs or erases the
operation in progress is left half done and PowerCut is raised; every later operation raises too,
until reboot() (the bytes stay, as flash does).  A cut program is torn in one of two ways: a prefix of
the page is programmed and the rest unchanged, or a random subset of the bits it would clear is cleared.
A cut erase leaves a prefix of the block erased.
"""

import random

BLOCK_SIZE = 4096
PAGE_SIZE = 256


class PowerCut(Exception):
    pass


class NorFlash:
    def __init__(self, blocks, data=None):
        self.blocks = blocks
        if data is None:
            data = bytearray(blocks * BLOCK_SIZE)  # one allocation: this runs on a 128k heap too
            erased = b"\xff" * PAGE_SIZE
            for i in range(0, len(data), PAGE_SIZE):
                data[i:i + PAGE_SIZE] = erased
        self.data = data
        self.cut_after = -1  # operations left before the power fails; -1: never
        self.dead = False
        self.programs = 0  # page programs (a program crossing a page boundary counts once per page)
        self.erases = 0

    def reboot(self):
        """Power returns: the same bytes, a chip that works again."""
        self.dead = False
        self.cut_after = -1

    def _tick(self):
        if self.dead:
            raise PowerCut("no power")
        if self.cut_after == 0:
            self.dead = True
            return True
        if self.cut_after > 0:
            self.cut_after -= 1
        return False

    def readblocks(self, block, buf, offset=0):
        if self.dead:
            raise PowerCut("no power")
        start = block * BLOCK_SIZE + offset
        n = len(buf)
        if start < 0 or start + n > len(self.data):
            raise OSError(22)
        buf[:] = memoryview(self.data)[start:start + n]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            for i in range((len(buf) + BLOCK_SIZE - 1) // BLOCK_SIZE):
                self.ioctl(6, block + i)
            offset = 0
        start = block * BLOCK_SIZE + offset
        end = start + len(buf)
        if start < 0 or end > len(self.data):
            raise OSError(22)
        mv = memoryview(buf)
        data = self.data
        pos = start
        while pos < end:  # one page program per page the write touches
            stop = min(end, (pos // PAGE_SIZE + 1) * PAGE_SIZE)
            cut = self._tick()
            self.programs += 1
            src = mv[pos - start:stop - start]
            if cut:
                self._torn_program(pos, src)
                raise PowerCut("power cut during a program at %d" % pos)
            if data[pos:stop] == b"\xff" * (stop - pos):
                data[pos:stop] = src  # fast path: programming erased bytes
            else:
                for i in range(stop - pos):
                    data[pos + i] &= src[i]
            pos = stop

    def _torn_program(self, pos, src):
        data = self.data
        n = len(src)
        if random.getrandbits(1):
            for i in range(random.getrandbits(16) % (n + 1)):
                data[pos + i] &= src[i]
        else:
            for i in range(n):
                data[pos + i] &= src[i] | random.getrandbits(8)

    def ioctl(self, op, arg):
        if op == 4:
            return self.blocks
        if op == 5:
            return BLOCK_SIZE
        if op == 6:
            if arg < 0 or arg >= self.blocks:
                raise OSError(22)
            cut = self._tick()
            self.erases += 1
            start = arg * BLOCK_SIZE
            n = BLOCK_SIZE
            if cut:
                n = random.getrandbits(16) % BLOCK_SIZE
            self.data[start:start + n] = b"\xff" * n
            if cut:
                raise PowerCut("power cut during an erase of block %d" % arg)
            return 0
        return 0

    # -- damage, for tests -------------------------------------------------------------------

    def flip(self, addr, bit=0):
        """Flip one bit at a byte address (a bit error, not a NOR program)."""
        self.data[addr] ^= 1 << bit


class CutDevice:
    """A NorFlash seen through a power failure that raises nothing: after `at` more programs or erases
    (-1: never) the one in progress is torn (half a program; an erase not done) and every later write is
    lost, while reads go on.  For a filesystem mounted on it (littlefs tests: what a cut leaves behind)."""

    def __init__(self, chip, at):
        self.chip = chip
        self.at = at  # operations left before the power fails; -1: never
        self.ops = 0
        self.dead = False

    def _tick(self):
        self.ops += 1
        if self.at == 0:
            self.dead = True
            return True
        if self.at > 0:
            self.at -= 1
        return False

    def readblocks(self, block, buf, offset=0):
        try:
            self.chip.readblocks(block, buf, offset)
        except MemoryError:  # a finaliser closing a file the cut left open: the heap is locked
            at = block * BLOCK_SIZE + offset
            data = self.chip.data
            for i in range(len(buf)):
                buf[i] = data[at + i]

    def writeblocks(self, block, buf, offset=0):
        if self.dead:
            return
        if self._tick():
            buf = memoryview(buf)[: len(buf) // 2]  # torn: half of it programmed
        self.chip.writeblocks(block, buf, offset)

    def ioctl(self, op, arg):
        if op != 6:
            return self.chip.ioctl(op, arg)
        if not (self.dead or self._tick()):  # an erase, page by page: nothing allocated
            at = arg * BLOCK_SIZE
            data = self.chip.data
            for i in range(0, BLOCK_SIZE, PAGE_SIZE):
                data[at + i : at + i + PAGE_SIZE] = _ERASED_PAGE
        return 0


_ERASED_PAGE = b"\xff" * PAGE_SIZE
