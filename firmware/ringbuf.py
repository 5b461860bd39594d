"""A byte ring buffer in one preallocated bytearray: a producer puts bytes in, a consumer reads them out.

Nothing allocates after construction, so a reader task can fill it from a UART without growing the
heap: put() copies from any buffer (a memoryview of a received chunk), readinto() copies into the
caller's buffer.  A full ring refuses bytes rather than overwrite unread ones; put() says how many it
took, so the caller can count what it dropped.
"""


class RingBuffer:
    def __init__(self, size):
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._head = 0  # index of the oldest byte
        self._len = 0

    def __len__(self):
        return self._len

    def room(self):
        """Bytes put() would take now."""
        return len(self._buf) - self._len

    def clear(self):
        self._head = self._len = 0

    def put(self, data):
        """Append as much of `data` as fits; the number of bytes taken."""
        view = self._view
        size = len(view)
        n = min(len(data), size - self._len)
        tail = (self._head + self._len) % size
        first = min(n, size - tail)
        view[tail : tail + first] = data[:first]
        view[: n - first] = data[first:n]
        self._len += n
        return n

    def readinto(self, buf):
        """Move the oldest bytes into `buf` (as many as fit); the number moved, 0 when empty."""
        view = self._view
        size = len(view)
        n = min(len(buf), self._len)
        head = self._head
        first = min(n, size - head)
        buf[:first] = view[head : head + first]
        buf[first:n] = view[: n - first]
        self._head = (head + n) % size
        self._len -= n
        return n
