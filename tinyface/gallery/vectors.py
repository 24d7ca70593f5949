"""A gallery's vectors file: a header, then float32 rows appended batch by batch.

Layout: a 64-byte header -- the magic ``TFVECS01`` (8 bytes), the gallery's
uuid (16 bytes), ``dim`` (uint32, little-endian), zeros -- then row ``i`` at
byte ``64 + 4 * dim * i``: ``dim`` float32 values.  Which rows are committed
is the database's to say (``meta.slots``); anything after them is the tail of
an interrupted batch.
"""
import os
import zlib

import numpy as np

from tinyface.errors import GalleryError

MAGIC = b"TFVECS01"
HEADER_BYTES = 64


def header(uuid_hex, dim) -> bytes:
    return (MAGIC + bytes.fromhex(uuid_hex) + int(dim).to_bytes(4, "little")).ljust(HEADER_BYTES, b"\0")


def check_header(data, uuid_hex, dim, where):
    """A :class:`GalleryError` unless ``data`` is the header of this gallery's file."""
    if data[:HEADER_BYTES] != header(uuid_hex, dim):
        raise GalleryError(f"{where}: not this gallery's vectors file (header does not match)")


def append_rows(path, uuid_hex, dim, slots, rows) -> int:
    """Write ``rows`` (n x dim) as rows slots .. slots + n - 1, cut the file just after them
    and fsync it; returns the rows' CRC-32.  The header is (re)written while no row is
    committed (``slots`` = 0), and checked otherwise."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if slots == 0:
            os.pwrite(fd, header(uuid_hex, dim), 0)
        else:
            check_header(os.pread(fd, HEADER_BYTES, 0), uuid_hex, dim, path)
        data = np.ascontiguousarray(rows, np.float32).tobytes()
        start = HEADER_BYTES + slots * dim * 4
        view = memoryview(data)
        while view:
            view = view[os.pwrite(fd, view, start + len(data) - len(view)):]
        os.ftruncate(fd, start + len(data))
        os.fsync(fd)
    finally:
        os.close(fd)
    return zlib.crc32(data)


def map_rows(path, uuid_hex, dim, slots):
    """The first ``slots`` rows, memory-mapped read-only (slots x dim float32)."""
    try:
        with open(path, "rb") as f:
            check_header(f.read(HEADER_BYTES), uuid_hex, dim, path)
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise GalleryError(f"{path}: the gallery's vectors file is missing") from None
    if size < HEADER_BYTES + slots * dim * 4:
        raise GalleryError(f"{path}: {size} bytes, but {slots} rows of {dim} floats need "
                           f"{HEADER_BYTES + slots * dim * 4}")
    return np.memmap(path, np.float32, "r", HEADER_BYTES, (slots, dim))
