#!/usr/bin/env python3
"""Builds tests/data/hostile/: hostile inputs for the robustness tests, and the reference's
verdict on each.

    /work/venv/bin/python tools/gen_hostile.py          # rewrites tests/data/hostile/

Deterministic (fixed seeds). Images are made with Pillow or written byte by byte; each file's
verdict comes from the reference, `clip.clip._transform(224)(Image.open(path))` of
clip-anytorch with Pillow 13.0.0 (see tests/data/preprocess/README.md):

* `images.tsv`: name, `accept` or `reject`, Pillow's exception (or mode and size), and for
  accepted files the SHA-256 of the reference tensor ([3, 224, 224] little-endian f32, as in
  tests/data/preprocess/goldens.tsv).
* `texts.tsv`: name, then `clip.tokenize(text, truncate=True)[0]` without its padding for the
  file's lines decoded as UTF-8 (or `invalid-utf8` when the bytes are not UTF-8: the `clip`
  CLI rejects such a line, the library only takes `&str`).
* `long_text.json`: the 10 MB text of the test (generated at test time: a repeated
  sentence) and its truncated reference tokenization.

Used by clip-preprocess/tests/hostile.rs (library, in-process), tests/hostile_api.rs (the
`Clip` API) and tests/hostile_cli.rs (the `clip` binary under `prlimit`/`timeout`).
"""
from __future__ import annotations

import hashlib
import io
import json
import random
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "hostile"
TEXT = OUT / "text"


def chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_header(w: int, h: int, color: int = 2, depth: int = 8) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))


def photo(w: int = 64, h: int = 48) -> Image.Image:
    """A small deterministic picture with edges and gradients."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x ^ y) * 8) % 256], -1)
    arr = (arr + rng.integers(0, 24, arr.shape)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def bitflip(data: bytes, seed: int, flips: int, skip: int) -> bytes:
    rng = random.Random(seed)
    out = bytearray(data)
    for _ in range(flips):
        i = rng.randrange(skip, len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def images() -> dict[str, bytes]:
    rng = random.Random(1234)
    files: dict[str, bytes] = {}
    # Empty files under every image extension.
    for ext in ["jpg", "png", "gif", "webp", "bmp", "tif"]:
        files[f"empty.{ext}"] = b""
    # Text and garbage named as images.
    files["text.jpg"] = b"This is not a picture, it is a text file named .jpg.\n" * 4
    files["html.png"] = b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n"
    files["json.webp"] = b'{"error": "not found"}\n'
    files["garbage.jpg"] = bytes(rng.randrange(256) for _ in range(4096))
    files["garbage.bmp"] = bytes(rng.randrange(256) for _ in range(2048))
    # Right magic, garbage after it.
    magic = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n", "gif": b"GIF89a",
             "webp": b"RIFF\x00\x10\x00\x00WEBP", "bmp": b"BM", "tif": b"II*\x00"}
    for ext, m in magic.items():
        files[f"magic_garbage.{ext}"] = m + bytes(rng.randrange(256) for _ in range(1024))
    # Valid small images, then truncated and bit-flipped copies of them.
    img = photo()
    valid = {
        "jpg": encoded(img, "JPEG", quality=90),
        "png": encoded(img, "PNG"),
        "gif": encoded(img.convert("P"), "GIF"),
        "webp": encoded(img, "WEBP", lossless=True),
        "bmp": encoded(img, "BMP"),
        "tif": encoded(img, "TIFF"),
    }
    for ext, data in valid.items():
        files[f"valid.{ext}"] = data
        files[f"truncated_half.{ext}"] = data[: len(data) // 2]
        files[f"truncated_header.{ext}"] = data[: min(len(data) - 1, 40)]
        for seed in range(3):
            files[f"bitflip{seed}.{ext}"] = bitflip(data, seed * 31 + len(ext), 8, 16)
    # Damaged JPEGs that Pillow opens or refuses by libjpeg's suspension rule (its source
    # waits for more data; the file is "truncated" only if that happens before the last
    # row; warnings are ignored): no EOI marker (the entropy decoder reads ahead past the
    # last MCU and waits; progressive: the scans are all read before the first row),
    # garbage before the EOI, a restart marker inside the scan data, a cut in the last row.
    jpg = valid["jpg"]
    progressive = encoded(img, "JPEG", quality=90, progressive=True)
    scan = jpg.index(b"\xff\xda") + 20
    files["no_eoi.jpg"] = jpg[:-2]
    files["no_eoi_progressive.jpg"] = progressive[:-2]
    files["garbage_before_eoi.jpg"] = jpg[:-2] + b"\x00\x11" * 40 + jpg[-2:]
    files["marker_in_scan.jpg"] = jpg[:scan] + b"\xff\xd3" + jpg[scan:]
    files["cut_last_row.jpg"] = jpg[:-12]
    # Header segments that Pillow's Python-level walk (`JpegImageFile._open`) refuses
    # although libjpeg decodes them: a TEM marker between segments, a JFIF segment too
    # short for its version field, a quantization segment that is not whole tables.
    sof_at = jpg.index(b"\xff\xc0")
    files["tem_in_header.jpg"] = jpg[:sof_at] + b"\x00\x11\xff\x01" + jpg[sof_at:]
    files["short_jfif.jpg"] = jpg[:2] + b"\xff\xe0\x00\x07JFIF\x00" + jpg[2:]
    dqt_at = jpg.index(b"\xff\xdb")
    files["dqt_partial_table.jpg"] = jpg[:dqt_at] + b"\xff\xdb\x00\x12" + bytes(16) + jpg[dqt_at:]
    # Decompression bombs: headers claiming far more than Pillow's 178,956,970 pixels.
    files["bomb.png"] = png_header(0x7FFFFFFF, 0x7FFFFFFF) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    files["bomb_rgba16.png"] = png_header(20000, 20000, 6, 16) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, 65500, 65500, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    jpeg = bytearray(valid["jpg"])
    at = jpeg.find(b"\xff\xc0")
    files["bomb.jpg"] = bytes(jpeg[:at]) + sof + bytes(jpeg[at + 2 + 17 :])
    files["bomb.gif"] = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff" \
        + b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00;"
    # VP8L: 14-bit width-1 and height-1 → 16384 × 16384.
    vp8l = b"\x2f" + struct.pack("<I", (16383) | (16383 << 14)) + b"\0" * 16
    files["bomb.webp"] = b"RIFF" + struct.pack("<I", 4 + 8 + len(vp8l)) + b"WEBP" + b"VP8L" + struct.pack("<I", len(vp8l)) + vp8l
    bmp = bytearray(valid["bmp"])
    bmp[18:26] = struct.pack("<ii", 100000, 100000)
    files["bomb.bmp"] = bytes(bmp)
    tif = Image.open(io.BytesIO(valid["tif"]))
    tif_bytes = bytearray(valid["tif"])
    # Patch ImageWidth/ImageLength (tags 256/257) in the first IFD.
    (ifd,) = struct.unpack_from("<I", tif_bytes, 4)
    (n,) = struct.unpack_from("<H", tif_bytes, ifd)
    for i in range(n):
        e = ifd + 2 + 12 * i
        tag, typ, count = struct.unpack_from("<HHI", tif_bytes, e)
        if tag in (256, 257):
            struct.pack_into("<HHII", tif_bytes, e, tag, 4, 1, 200000)
    files["bomb.tif"] = bytes(tif_bytes)
    del tif
    # Within Pillow's limit but large: a 13000 × 13000 GIF canvas around a 1 × 1 frame
    # (Pillow accepts it: 169 M pixels), and a PNG of that size whose data stops early.
    files["big_canvas.gif"] = b"GIF89a" + struct.pack("<HHBBB", 13000, 13000, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff" \
        + b"," + struct.pack("<HHHHB", 6500, 6500, 1, 1, 0) + b"\x02\x02\x44\x01\x00;"
    files["big_truncated.png"] = png_header(13000, 13000, 0, 8) + chunk(b"IDAT", zlib.compress(b"\0" * 20000)) + chunk(b"IEND", b"")
    # Extreme shapes.
    files["1x1.png"] = encoded(Image.new("RGB", (1, 1), (200, 30, 90)), "PNG")
    files["1x1.jpg"] = encoded(Image.new("RGB", (1, 1), (200, 30, 90)), "JPEG")
    files["1x1.gif"] = encoded(Image.new("P", (1, 1), 3), "GIF")
    line = Image.fromarray((np.arange(100000) % 251).astype(np.uint8).reshape(100000, 1), "L")
    files["1x100000.png"] = encoded(line, "PNG")
    files["100000x1.png"] = encoded(line.transpose(Image.Transpose.TRANSPOSE), "PNG")
    # Animated GIFs (the first frame is the picture): frames of different sizes, offsets,
    # disposal methods and local palettes.
    frames = [photo(40, 30).convert("P"), photo(20, 10).convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
              Image.new("P", (40, 30), 5)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=[50, 80, 20], loop=0, disposal=[0, 2, 1])
    files["animated.gif"] = buf.getvalue()
    buf = io.BytesIO()
    small = [Image.new("P", (8, 8), i) for i in range(40)]
    small[0].save(buf, "GIF", save_all=True, append_images=small[1:], duration=10, loop=0)
    files["animated_40_frames.gif"] = buf.getvalue()
    # A GIF whose first frame reaches past the logical screen (Pillow grows the canvas):
    # a 3 × 2 GIF from Pillow with its screen shrunk to 2 × 2 and the frame moved to (2, 3).
    gif = bytearray(encoded(Image.new("P", (3, 2), 7), "GIF"))
    gif[6:10] = struct.pack("<HH", 2, 2)
    desc = gif.index(b",", 13 + 3 * 2 ** ((gif[10] & 7) + 1))
    gif[desc + 1 : desc + 5] = struct.pack("<HH", 2, 3)
    files["frame_outside_screen.gif"] = bytes(gif)
    # A GIF whose LZW data stops before the frame is complete (no block terminator).
    files["truncated_frame.gif"] = b"GIF89a" + struct.pack("<HHBBB", 4, 4, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff" \
        + b"," + struct.pack("<HHHHB", 0, 0, 4, 4, 0) + b"\x02\x04\x84\x8f\x09\x00;"
    # Compressed ancillary PNG chunks. Pillow inflates at most MAX_TEXT_CHUNK (1 MiB) of an
    # iCCP profile or zTXt text: more fails the file (before IDAT at open, after it in
    # load_end); a corrupt profile or text is ignored; a compression method other than 0
    # fails either.
    base = encoded(photo(), "PNG")
    idat, iend = base.index(b"IDAT") - 4, base.index(b"IEND") - 4

    def before_idat(tag: bytes, body: bytes) -> bytes:
        return base[:idat] + chunk(tag, body) + base[idat:]

    profile_bomb = zlib.compress(b"\0" * (16 << 20), 9)
    files["iccp_corrupt.png"] = before_idat(b"iCCP", b"icc\0\0" + b"not zlib data")
    files["iccp_method1.png"] = before_idat(b"iCCP", b"icc\0\1" + zlib.compress(b"profile"))
    files["iccp_bomb.png"] = before_idat(b"iCCP", b"icc\0\0" + profile_bomb)
    files["iccp_bomb_after_idat.png"] = base[:iend] + chunk(b"iCCP", b"icc\0\0" + profile_bomb) + base[iend:]
    files["ztxt_ok.png"] = before_idat(b"zTXt", b"Comment\0\0" + zlib.compress(b"hello"))
    files["ztxt_corrupt.png"] = before_idat(b"zTXt", b"Comment\0\0" + b"not zlib data")
    files["ztxt_bomb.png"] = before_idat(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * (2 << 20), 9))
    # At Pillow's bound: what zlib does with the input left when the output reaches 1 MiB.
    def flip_last(data: bytes) -> bytes:
        return data[:-1] + bytes([data[-1] ^ 1])

    mib = 1 << 20
    files["ztxt_1mib.png"] = before_idat(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * mib, 9))
    files["ztxt_1mib_badsum.png"] = before_idat(b"zTXt", b"Comment\0\0" + flip_last(zlib.compress(b"a" * mib, 9)))
    files["ztxt_1mib_plus1_badsum.png"] = before_idat(
        b"zTXt", b"Comment\0\0" + flip_last(zlib.compress(b"a" * (mib + 1), 9)))
    files["ztxt_over_nosum.png"] = before_idat(b"zTXt", b"Comment\0\0" + zlib.compress(b"a" * (mib + 100), 9)[:-4])
    # A stream of more than 1 MiB cut short: Pillow refuses it only if input is left where
    # zlib stops at the bound (its `unconsumed_tail`). `at` is that position.
    long_stream = zlib.compress(bytes(range(256)) * (3 * mib // 256), 9)
    lo, hi = 0, len(long_stream)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(zlib.decompressobj().decompress(long_stream[:mid], mib)) >= mib:
            hi = mid
        else:
            lo = mid + 1
    for name, cut in (("ztxt_cut_at_bound.png", lo), ("ztxt_cut_past_bound.png", lo + 3)):
        files[name] = before_idat(b"zTXt", b"Comment\0\0" + long_stream[:cut])
    # Where Pillow's load_end stops walking after the image data: a chunk type that is not
    # four word characters, the next fcTL of an animated PNG; a chunk cut short fails.
    files["bad_type_before_idat.png"] = before_idat(b"ab-d", b"")
    files["after_idat_bad_type.png"] = base[:iend] + chunk(b"ab-d", b"") + chunk(b"zTXt", b"k\0\1x") + base[iend:]
    files["after_idat_cut_chunk.png"] = base[:iend] + struct.pack(">I", 1000) + b"tEXt" + b"k\0v"
    buf = io.BytesIO()
    photo(32, 24).save(buf, "PNG", save_all=True, append_images=[Image.new("RGB", (32, 24), (0, 0, 255))], duration=100)
    apng = buf.getvalue()
    apng_iend = apng.index(b"IEND") - 4
    files["apng_bad_ztxt_after_fctl.png"] = apng[:apng_iend] + chunk(b"zTXt", b"k\0\1x") + apng[apng_iend:]
    # Damaged PNGs, as Pillow reads them: CRCs are checked before the image data only, the
    # zlib stream's Adler-32 is checked, the chunks may end without an IEND, and the last
    # IDAT is read as far as it goes.
    idat_len = struct.unpack(">I", base[idat:idat + 4])[0]
    idat_crc = idat + 8 + idat_len
    b = bytearray(base)
    b[idat_crc] ^= 0x5A
    files["idat_bad_crc.png"] = bytes(b)
    b = bytearray(base)
    b[idat + 8 + idat_len // 2] ^= 0x10
    b[idat_crc:idat_crc + 4] = struct.pack(">I", zlib.crc32(bytes(b[idat + 4:idat + 8 + idat_len])))
    files["idat_bad_adler.png"] = bytes(b)
    text_chunk = chunk(b"tEXt", b"Comment\0hello")
    files["text_bad_crc.png"] = base[:idat] + text_chunk[:-1] + bytes([text_chunk[-1] ^ 1]) + base[idat:]
    files["no_iend.png"] = base[:iend]
    files["garbage_after_idat.png"] = base[:iend] + b"\x00\x01junk"
    files["cut_in_adler.png"] = base[:idat_crc - 2]
    # iTXt: Pillow inflates a compressed text (flag 1, method 0) up to 1 MiB, fails the file
    # past it, ignores a corrupt stream, another method or text that is not UTF-8, and counts
    # the characters (not bytes) of every text it keeps towards its 64 MiB text memory.
    def itxt(flag: int, method: int, text: bytes, key: bytes = b"Comment") -> bytes:
        return key + b"\0" + bytes([flag, method]) + b"en\0Kommentar\0" + text

    files["itxt_ok.png"] = before_idat(b"iTXt", itxt(1, 0, zlib.compress("héllo".encode())))
    files["itxt_bomb.png"] = before_idat(b"iTXt", itxt(1, 0, zlib.compress(b"a" * (2 << 20), 9)))
    files["itxt_bomb_after_idat.png"] = base[:iend] + chunk(b"iTXt", itxt(1, 0, zlib.compress(b"a" * (2 << 20), 9))) \
        + base[iend:]
    files["itxt_bomb_method1.png"] = before_idat(b"iTXt", itxt(1, 1, zlib.compress(b"a" * (2 << 20), 9)))
    files["itxt_corrupt.png"] = before_idat(b"iTXt", itxt(1, 0, b"not zlib data"))

    def itxt_many(text: bytes, n: int = 65, key: bytes = b"Comment") -> bytes:
        one = chunk(b"iTXt", itxt(1, 0, zlib.compress(text, 9), key))
        return base[:idat] + one * n + base[idat:]

    files["itxt_memory_over.png"] = itxt_many(b"a" * mib, key=b"")
    files["itxt_memory_chars.png"] = itxt_many("é".encode() * (mib // 2))
    files["itxt_memory_not_utf8.png"] = itxt_many(b"\xff" * mib)
    # A 1 × 1 GIF screen whose first frame claims 65535 × 65535 pixels (the canvas grows).
    files["bomb_frame.gif"] = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff" \
        + b"," + struct.pack("<HHHHB", 0, 0, 65535, 65535, 0) + b"\x02\x02\x44\x01\x00;"
    # NEAREST (palette images) on a strip: the resized image is 224 × 22,400,000.
    strip = Image.frombytes("P", (1, 100000), (np.arange(100000) % 251).astype(np.uint8).tobytes())
    strip.putpalette([v for c in range(256) for v in (c, 255 - c, (c * 7) % 256)])
    files["1x100000_p.png"] = encoded(strip, "PNG")
    # An animated PNG (Pillow opens the default image).
    buf = io.BytesIO()
    frames_rgb = [photo(32, 24), Image.new("RGB", (32, 24), (0, 0, 255))]
    frames_rgb[0].save(buf, "PNG", save_all=True, append_images=frames_rgb[1:], duration=100)
    files["animated.png"] = buf.getvalue()
    return files


def texts() -> dict[str, bytes]:
    return {
        "invalid_utf8.txt": b"a photo of a \xff\xfe cat\n",
        "lone_surrogate.txt": b"surrogate \xed\xa0\x80 half\n",
        "overlong.txt": b"overlong \xc0\xaf slash\n",
        "nul_bytes.txt": b"a photo\x00 of a\x00\x00 dog\n",
        "control_chars.txt": b"\x01\x02\x1b[31mred\x1b[0m\x7f \x0b\x0c tab\there\n",
        "empty_line.txt": b"\n",
        "bom.txt": "\ufeffa photo of a bird\n".encode(),
        "bidi_zero_width.txt": "\u202eevil\u202c \u200b\u200d\u2060 words\n".encode(),
        "combining_flood.txt": ("Z" + "\u0336\u0337\u0338" * 300 + "\n").encode(),
        "entities.txt": ("&amp;" * 200 + "&#x1F600;&#99999999999;&lt;\n").encode(),
        "emoji_zwj.txt": ("\U0001F468\u200D\U0001F469\u200D\U0001F467" * 30 + "\n").encode(),
        "one_long_word.txt": ("x" * 20000 + "\n").encode(),
        "many_lines.txt": b"a\n" * 5000,
    }


LONG_UNIT = "a photo of a cat on a mat, &amp; 12345 \u00e9t\u00e9! "
LONG_BYTES = 10 * 1024 * 1024


def tokenize_ref(text: str) -> list[int]:
    import clip

    row = clip.tokenize([text], truncate=True)[0].tolist()
    while row and row[-1] == 0:
        row.pop()
    return row


def main() -> None:
    from clip.clip import _transform

    if PIL.__version__ != "13.0.0":
        sys.exit(f"Pillow 13.0.0 is the reference, found {PIL.__version__}")
    transform = _transform(224)
    OUT.mkdir(parents=True, exist_ok=True)
    TEXT.mkdir(parents=True, exist_ok=True)
    for p in list(OUT.iterdir()) + list(TEXT.iterdir()):
        if p.is_file() and p.name != "README.md":
            p.unlink()
    lines = ["# reference: clip-anytorch clip.clip._transform(224)(Image.open(path)); "
             f"Pillow {PIL.__version__}",
             "# name\tverdict\tdetail (exception, or mode and WxH)\tsha256(little-endian f32 [3,224,224]) or -"]
    for name, data in sorted(images().items()):
        path = OUT / name
        path.write_bytes(data)
        try:
            with Image.open(path) as im:
                detail = f"{im.mode} {im.size[0]}x{im.size[1]}"
                t = transform(im).numpy().astype("<f4", copy=False)
            digest = hashlib.sha256(np.ascontiguousarray(t).tobytes()).hexdigest()
            lines.append(f"{name}\taccept\t{detail}\t{digest}")
        except Exception as e:  # noqa: BLE001 — the verdict is whatever Pillow raises
            lines.append(f"{name}\treject\t{type(e).__name__}\t-")
        print(lines[-1][:120], flush=True)
    (OUT / "images.tsv").write_text("\n".join(lines) + "\n")

    tlines = ["# name\tper line: clip.tokenize(line, truncate=True)[0] without padding, "
              "ids joined by ',', lines by ' '; or invalid-utf8"]
    for name, data in sorted(texts().items()):
        (TEXT / name).write_bytes(data)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            tlines.append(f"{name}\tinvalid-utf8")
            continue
        parts = text.split("\n")
        if text.endswith("\n"):
            parts.pop()
        rows = [",".join(map(str, tokenize_ref(p))) for p in parts]
        tlines.append(f"{name}\t{' '.join(rows)}")
    (OUT / "texts.tsv").write_text("\n".join(tlines) + "\n")

    # The 10 MB text: LONG_UNIT repeated to LONG_BYTES bytes (cut at a char boundary);
    # the truncated row only depends on its start.
    prefix = LONG_UNIT * 40
    (OUT / "long_text.json").write_text(json.dumps({
        "unit": LONG_UNIT, "bytes": LONG_BYTES,
        "truncated_ids": tokenize_ref(prefix),
    }, ensure_ascii=True) + "\n")


if __name__ == "__main__":
    main()
