"""Writing RAR 4.x archives whose files are stored uncompressed, for the tests of the UCF101 path.

No tool that creates RAR archives can be installed here (RAR's compressor is proprietary), but the
RAR 4.x container is documented (RARLAB's technote): a marker block, an archive header, one file
header per file followed by its bytes (method 0x30, "store"), and an end-of-archive block. Each
header carries the low 16 bits of the CRC-32 of its bytes after the CRC field; a file header the
CRC-32 of the file's data. Paths use backslashes, as RAR writes them on Windows.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

MARKER = b"Rar!\x1a\x07\x00"
MAIN_HEADER, FILE_HEADER, END_OF_ARCHIVE = 0x73, 0x74, 0x7B
LONG_BLOCK = 0x8000  # ADD_SIZE (here: the packed size) follows the header
HOST_WINDOWS, STORE, VERSION_2_0, ARCHIVE_ATTRIBUTE = 2, 0x30, 20, 0x20
DOS_TIME_2012 = (2012 - 1980) << 25 | 1 << 21 | 1 << 16


def _block(kind: int, flags: int, body: bytes) -> bytes:
    head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head


def write_stored_rar(path: Path, files: list[tuple[str, bytes]]) -> None:
    """A RAR 4.x archive of (name with '/' separators, data) pairs."""
    out = bytearray(MARKER)
    out += _block(MAIN_HEADER, 0, struct.pack("<HI", 0, 0))
    for name, data in files:
        encoded = name.replace("/", "\\").encode()
        fields = (len(data), len(data), HOST_WINDOWS, zlib.crc32(data), DOS_TIME_2012, VERSION_2_0, STORE)
        body = struct.pack("<IIBIIBBHI", *fields, len(encoded), ARCHIVE_ATTRIBUTE) + encoded
        out += _block(FILE_HEADER, LONG_BLOCK, body) + data
    out += _block(END_OF_ARCHIVE, 0x4000, b"")
    path.write_bytes(bytes(out))
