"""Test data: the real images under t/data and images of a chosen size made from them."""
import os
import random
import struct
import zlib

from .paths import DATA


def image(name):
    return os.path.join(DATA, name)


def read(name):
    with open(image(name), "rb") as f:
        return f.read()


def png_chunk(ctype, data):
    return (struct.pack(">I", len(data)) + ctype + data
            + struct.pack(">I", zlib.crc32(ctype + data) & 0xFFFFFFFF))


def png_of_size(total, base="sample.png", seed=None):
    """A valid PNG of exactly total bytes: a real PNG with a private ancillary chunk
    (correct CRC) inserted before IEND to fill the difference (zeros, or bytes from a
    random generator seeded with seed)."""
    png = read(base)
    iend = png.rindex(b"IEND") - 4
    fill = total - len(png) - 12
    assert fill >= 0, "%d bytes is under the base image's size" % total
    filler = (b"\0" * fill if seed is None
              else bytes(random.Random(seed).getrandbits(8) for _ in range(fill)))
    out = png[:iend] + png_chunk(b"prVt", filler) + png[iend:]
    assert len(out) == total
    return out


def bmp(width, height, pixels=None):
    """A valid uncompressed 24-bit BMP (random pixels unless given)."""
    row = (width * 3 + 3) & ~3
    pixels = pixels if pixels is not None else os.urandom(row * height)
    return (b"BM" + struct.pack("<IHHI", 54 + len(pixels), 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835,
                          0, 0)
            + pixels)
