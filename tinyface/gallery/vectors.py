"""A gallery's vectors file, a header then float32 rows appended batch by batch, and its int8 copy.

Layout of the vectors file (``PATH-vectors``): a 64-byte header -- the magic
``TFVECS01`` (8 bytes), the gallery's uuid (16 bytes), ``dim`` (uint32,
little-endian), zeros -- then row ``i`` at byte ``64 + 4 * dim * i``: ``dim``
float32 values.  Which rows are committed is the database's to say
(``meta.slots``); anything after them is the tail of an interrupted batch.

The codes file (``PATH-codes``) is the same with the magic ``TFCODE01`` and
rows of ``kernels.codes.row_bytes(dim)`` bytes: row ``i`` holds the int8 code
of vector row ``i`` (``kernels.codes.encode``), derived data that search reads
first.  The database says how many of its rows are valid (``meta.coded``, at
most ``slots``).
"""
import os
import zlib
from typing import NamedTuple

import numpy as np

from tinyface.errors import GalleryError
from tinyface.kernels.codes import row_bytes as code_bytes

HEADER_BYTES = 64


class Layout(NamedTuple):
    magic: bytes
    what: str            # for messages
    dtype: str           # of a row's values as mapped
    values: object       # dim -> values per row, as mapped

    def row_bytes(self, dim) -> int:
        return self.values(dim) * np.dtype(self.dtype).itemsize


VECTORS = Layout(b"TFVECS01", "vectors file", "<f4", lambda dim: int(dim))
CODES = Layout(b"TFCODE01", "int8 codes file", "u1", code_bytes)
MAGIC = VECTORS.magic


def header(uuid_hex, dim, layout=VECTORS) -> bytes:
    return (layout.magic + bytes.fromhex(uuid_hex) + int(dim).to_bytes(4, "little")).ljust(HEADER_BYTES, b"\0")


def check_header(data, uuid_hex, dim, where, layout=VECTORS):
    """A :class:`GalleryError` unless ``data`` is the header of this gallery's file."""
    if data[:HEADER_BYTES] != header(uuid_hex, dim, layout):
        raise GalleryError(f"{where}: not this gallery's {layout.what} (header does not match)")


def write_rows(path, uuid_hex, dim, start, blocks, layout=VECTORS) -> int:
    """Write the rows of ``blocks`` (arrays of rows, one after the other) as rows start ..,
    cut the file just after them and fsync it; returns the rows' CRC-32.  The header is
    (re)written when ``start`` is 0, and checked otherwise."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    crc = 0
    try:
        if start == 0:
            os.pwrite(fd, header(uuid_hex, dim, layout), 0)
        else:
            check_header(os.pread(fd, HEADER_BYTES, 0), uuid_hex, dim, path, layout)
        at = HEADER_BYTES + start * layout.row_bytes(dim)
        for block in blocks:
            data = np.ascontiguousarray(block, layout.dtype).tobytes()
            crc = zlib.crc32(data, crc)
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
        os.ftruncate(fd, at)
        os.fsync(fd)
    finally:
        os.close(fd)
    return crc


def append_rows(path, uuid_hex, dim, slots, rows) -> int:
    """Write ``rows`` (n x dim float32) as vector rows slots .. slots + n - 1 (``write_rows``)."""
    return write_rows(path, uuid_hex, dim, slots, [rows])


def rows_on_disk(path, uuid_hex, dim, layout=VECTORS) -> int:
    """How many whole rows the file at ``path`` holds after its header (a
    :class:`GalleryError` if it is missing or not this gallery's)."""
    try:
        with open(path, "rb") as f:
            check_header(f.read(HEADER_BYTES), uuid_hex, dim, path, layout)
            size = os.fstat(f.fileno()).st_size
    except FileNotFoundError:
        raise GalleryError(f"{path}: the gallery's {layout.what} is missing") from None
    return (size - HEADER_BYTES) // layout.row_bytes(dim)


def map_rows(path, uuid_hex, dim, slots, layout=VECTORS):
    """The first ``slots`` rows, memory-mapped read-only (slots x values per row)."""
    if rows_on_disk(path, uuid_hex, dim, layout) < slots:
        need = HEADER_BYTES + slots * layout.row_bytes(dim)
        raise GalleryError(f"{path}: {os.path.getsize(path)} bytes, but {slots} rows of the "
                           f"{layout.what} need {need}")
    return np.memmap(path, layout.dtype, "r", HEADER_BYTES, (slots, layout.values(dim)))
