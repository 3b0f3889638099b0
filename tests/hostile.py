"""A corpus of hostile and unusual uploads, generated deterministically at test time.

    corpus() -> {name: Case(data, filename, expected)}

``expected`` is ``"accept"`` (decodes, and `clip_inputs` finds speech in it) or the error code the
service must answer with (`ser.errors`). Nothing here is a committed binary: every file is built
from a synthetic tone with soundfile, or written byte by byte with `struct`, so a reader can see
exactly which header field lies. Used by tests/test_hostile_decode.py (in-process) and
tests/test_hostile_service.py (over HTTP); tests/test_fuzz_decode.py mutates `seeds()`.

Every case is small (≤ 3 MB) and, with the default `AudioLimits`, decides in milliseconds.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass
from functools import cache

import numpy as np
import soundfile as sf

ACCEPT = "accept"
SR = 16_000
# Accepted cases whose header lies only in fields a decoder can derive from the others, or that
# carry extra chunks: they must decode to exactly the samples of the honest `wav()`.
SAME_AS_TONE = frozenset(
    {
        "block_align_0",
        "block_align_3",
        "byte_rate_0",
        "data_size_huge",
        "riff_size_huge",
        "riff_size_0",
        "wav_list_info_after_data",
        "wav_list_info_before_fmt",
        "wav_bext_chunk",
        "wav_junk_before_fmt",
        "wav_unknown_chunk",
    }
)


@dataclass(frozen=True)
class Case:
    data: bytes
    filename: str
    expected: str  # "accept" or an error code of ser.errors


# --- signals and encoders ------------------------------------------------------------------------
def tone(seconds: float = 1.5, sr: int = SR, f0: float = 180.0, amp: float = 0.3) -> np.ndarray:
    """A speech-like harmonic tone with a syllable-rate envelope (as tests/conftest.py's)."""
    t = np.arange(int(seconds * sr)) / sr
    harmonics = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    return (amp * envelope * harmonics / 2.6).astype(np.float32)


def encode(y: np.ndarray, sr: int = SR, format: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, sr, format=format, subtype=subtype)
    return buf.getvalue()


def channels(y: np.ndarray, n: int) -> np.ndarray:
    """``n`` channels of ``y`` at different gains (so the downmix is not silent)."""
    return np.stack([y * (1.0 - 0.1 * i) for i in range(n)], axis=1)


def pcm16(y: np.ndarray) -> bytes:
    return (np.clip(y, -1, 1) * 32767).astype("<i2").tobytes()


# --- RIFF/WAV written field by field -------------------------------------------------------------
def chunk(cid: bytes, payload: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk; ``size`` overrides the declared size (the payload is written as it is)."""
    pad = b"\x00" if len(payload) % 2 else b""
    return cid + struct.pack("<I", len(payload) if size is None else size) + payload + pad


def fmt_chunk(
    *,
    tag: int = 1,
    nch: int = 1,
    sr: int = SR,
    bits: int = 16,
    block_align: int | None = None,
    byte_rate: int | None = None,
) -> bytes:
    block_align = nch * max(bits, 8) // 8 if block_align is None else block_align
    byte_rate = sr * block_align if byte_rate is None else byte_rate
    return chunk(
        b"fmt ", struct.pack("<HHIIHH", tag, nch, sr & 0xFFFFFFFF, byte_rate & 0xFFFFFFFF, block_align, bits)
    )


def riff(*chunks: bytes, riff_id: bytes = b"RIFF", form: bytes = b"WAVE", size: int | None = None) -> bytes:
    body = form + b"".join(chunks)
    return riff_id + struct.pack("<I", len(body) if size is None else size) + body


def wav(
    samples: bytes | None = None,
    *,
    data_size: int | None = None,
    before: tuple[bytes, ...] = (),
    after: tuple[bytes, ...] = (),
    **fmt,
) -> bytes:
    """A PCM WAV of 16-bit ``samples`` (default: the 1.5 s tone) with any fmt field overridden."""
    samples = pcm16(tone()) if samples is None else samples
    return riff(*before, fmt_chunk(**fmt), chunk(b"data", samples, data_size), *after)


# --- FLAC STREAMINFO edits -----------------------------------------------------------------------
def flac_streaminfo(
    data: bytes, *, sample_rate: int | None = None, total_samples: int | None = None
) -> bytes:
    """Rewrite fields of a FLAC file's STREAMINFO block (right after the 'fLaC' marker).

    STREAMINFO bytes 10–17 (after the 4-byte block header) pack sample rate (20 bits),
    channels − 1 (3), bits − 1 (5) and total samples (36).
    """
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "first metadata block must be STREAMINFO"
    at = 8 + 10
    (packed,) = struct.unpack(">Q", data[at : at + 8])
    rate, rest = packed >> 44, packed & ((1 << 44) - 1)
    chans_bits, total = rest >> 36, rest & ((1 << 36) - 1)
    rate = rate if sample_rate is None else sample_rate
    total = total if total_samples is None else total_samples
    packed = (rate << 44) | (chans_bits << 36) | total
    return data[:at] + struct.pack(">Q", packed) + data[at + 8 :]


# --- non-audio files -------------------------------------------------------------------------------
def png() -> bytes:
    def block(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    raw = b"".join(b"\x00" + bytes(range(0, 48, 3)) for _ in range(16))  # 16×16 grey, filter 0.
    ihdr = struct.pack(">IIBBBBB", 16, 16, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + block(b"IHDR", ihdr) + block(b"IDAT", zlib.compress(raw)) + block(b"IEND", b"")
    )


def jpeg() -> bytes:
    """The markers of a baseline JPEG (SOI, APP0/JFIF, DQT, SOF0, …, EOI) with made-up tables."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(1, 65))
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 8, 8, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + dqt + sof + b"\xff\xda" + b"\x00" * 200 + b"\xff\xd9"


def zip_file() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("clip.wav", encode(tone(0.5)))  # A WAV inside a ZIP is still a ZIP.
    return buf.getvalue()


def pdf() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )


def elf() -> bytes:
    """A 64-bit little-endian ELF header (x86-64 executable) followed by zeros."""
    ident = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    header = struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    return ident + header + b"\x00" * 512


def random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).bytes(n)


# --- the corpus ----------------------------------------------------------------------------------
@cache
def corpus() -> dict[str, Case]:
    """Every case, by name; see the module docstring."""
    y = tone()
    good = encode(y)
    cases: dict[str, Case] = {}

    def add(name: str, data: bytes, expected: str, filename: str | None = None) -> None:
        assert name not in cases, name
        cases[name] = Case(data, filename or f"{name}.wav", expected)

    # Not audio at all (some named .wav): 415 invalid_audio.
    text = b"this is a text file, not audio\n" * 20
    add("text", text, "invalid_audio", "notes.txt")
    add("text_named_wav", text, "invalid_audio")
    add("json", json.dumps({"audio": [0.1] * 200}).encode(), "invalid_audio", "clip.json")
    add(
        "html", b"<!doctype html><html><body>" + b"<p>not audio</p>" * 40 + b"</body></html>", "invalid_audio"
    )
    add("svg_xml", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>' * 10, "invalid_audio")
    add("png", png(), "invalid_audio", "image.png")
    add("jpeg_named_wav", jpeg(), "invalid_audio")
    add("zip_with_wav_inside", zip_file(), "invalid_audio", "clip.zip")
    add("gzip_of_wav", gzip.compress(good, mtime=0), "invalid_audio", "clip.wav.gz")
    add("pdf", pdf(), "invalid_audio", "doc.pdf")
    add("elf", elf(), "invalid_audio", "a.out")
    add("random_bytes", random_bytes(4096, 0), "invalid_audio")
    add("random_64k", random_bytes(65_536, 1), "invalid_audio", "clip.mp3")
    add("nul_bytes", b"\x00" * 4096, "invalid_audio")
    add("one_byte", b"R", "invalid_audio")
    add("empty", b"", "empty_audio")
    add("riff_magic_then_random", b"RIFF" + random_bytes(2048, 2), "invalid_audio")
    add(
        "id3_tag_no_frames",
        b"ID3\x04\x00\x00\x00\x00\x00\x10" + b"\x00" * 16 + random_bytes(512, 3),
        "invalid_audio",
    )
    add("oggs_then_random", b"OggS\x00\x02" + random_bytes(2048, 4), "invalid_audio", "clip.ogg")
    add("flac_magic_then_random", b"fLaC" + random_bytes(2048, 5), "invalid_audio", "clip.flac")
    # Audio, but in containers libsndfile reads and we refuse (ser.audio.ACCEPTED_FORMATS).
    add("au_container", encode(y, format="AU", subtype="PCM_16"), "invalid_audio", "clip.au")
    add("voc_container", encode(y, format="VOC", subtype="PCM_16"), "invalid_audio", "clip.voc")

    # Broken or lying WAV headers.
    for cut in (4, 8, 12, 16, 20, 24, 30, 36, 40):
        add(f"wav_truncated_at_{cut}", good[:cut], "invalid_audio")
    add("wav_header_only", good[:44], "empty_audio")
    add("wav_truncated_at_100", good[:100], "audio_too_short")
    add("wav_truncated_at_half", good[: len(good) // 2], ACCEPT)  # What is there decodes.
    add("riff_id_wrong", riff(fmt_chunk(), chunk(b"data", pcm16(y)), riff_id=b"RIFQ"), "invalid_audio")
    add("wave_id_wrong", riff(fmt_chunk(), chunk(b"data", pcm16(y)), form=b"WAVX"), "invalid_audio")
    add("fmt_id_wrong", riff(chunk(b"fmt_", fmt_chunk()[8:]), chunk(b"data", pcm16(y))), "invalid_audio")
    add("no_fmt_chunk", riff(chunk(b"data", pcm16(y))), "invalid_audio")
    add("no_data_chunk", riff(fmt_chunk()), "invalid_audio")
    add("fmt_chunk_tiny", riff(chunk(b"fmt ", b"\x01\x00"), chunk(b"data", pcm16(y))), "invalid_audio")
    add(
        "fmt_size_huge",
        riff(chunk(b"fmt ", fmt_chunk()[8:], 0xFFFFFFF0), chunk(b"data", pcm16(y))),
        "invalid_audio",
    )
    add("format_tag_unknown", wav(tag=0x1234), "invalid_audio")
    add("channels_0", wav(nch=0, block_align=2), "invalid_audio")
    add("channels_65535", wav(nch=65535, block_align=2), "invalid_audio")
    add("sample_rate_0", wav(sr=0), "invalid_audio")
    add("sample_rate_1", wav(sr=1), "unsupported_audio")
    add("sample_rate_4e9", wav(sr=4_000_000_000), "invalid_audio")  # libsndfile refuses it.
    add("bits_0", wav(bits=0), "invalid_audio")
    # Fewer valid bits than the container holds is legal WAV; here the block align (2) says 16-bit
    # containers and libsndfile trusts the bits (8-bit): it decodes noise. A lie, not a danger.
    add("bits_7_block_align_2", wav(bits=7, block_align=2), ACCEPT)
    add("bits_64_int", wav(bits=64), "invalid_audio")
    # Redundant fields that lie: libsndfile derives them from the others (see `SAME_AS_TONE`).
    add("block_align_0", wav(block_align=0), ACCEPT)
    add("block_align_3", wav(block_align=3), ACCEPT)
    add("byte_rate_0", wav(byte_rate=0), ACCEPT)
    add("data_size_huge", wav(data_size=0xFFFFFFF0), ACCEPT)  # Streamed WAVs declare this.
    add("riff_size_huge", riff(fmt_chunk(), chunk(b"data", pcm16(y)), size=0xFFFFFFFF), ACCEPT)
    add("riff_size_0", riff(fmt_chunk(), chunk(b"data", pcm16(y)), size=0), ACCEPT)

    # Other formats, broken.
    flac = encode(y, format="FLAC")
    ogg = encode(y, format="OGG", subtype="VORBIS")
    mp3 = encode(y, format="MP3")
    for fmt, data in (("flac", flac), ("ogg", ogg), ("mp3", mp3)):
        for cut in (3, 10, 40):
            add(f"{fmt}_truncated_at_{cut}", data[:cut], "invalid_audio", f"clip.{fmt}")
        # Cut mid-stream: the FLAC decoder loses sync on the cut frame, and libsndfile's Vorbis
        # reader needs the last page to learn the length; MP3 decodes what is there (as WAV).
        half = ACCEPT if fmt == "mp3" else "invalid_audio"
        add(f"{fmt}_truncated_at_half", data[: len(data) // 2], half, f"clip.{fmt}")

    # Degenerate audio.
    add("too_short", encode(tone(0.1)), "audio_too_short")
    add("silent", encode(np.zeros(SR * 2, np.float32)), "no_speech")
    add("below_noise_floor", encode(tone() * 1e-4, subtype="FLOAT"), "no_speech")
    add("dc_only", encode(np.full(SR * 2, 0.5, np.float32)), "no_speech")
    click = np.zeros(SR * 2, np.float32)
    click[SR] = 0.9
    add("single_click", encode(click), "no_speech")
    add("all_nan_float", encode(np.full(SR, np.nan, np.float32), subtype="FLOAT"), "non_finite_audio")
    add("all_inf_float", encode(np.full(SR, np.inf, np.float32), subtype="FLOAT"), "non_finite_audio")
    some_nan = y.copy()
    some_nan[::97] = np.nan
    add("some_nan_double", encode(some_nan, subtype="DOUBLE"), "non_finite_audio")

    # Resource abuse: declared length, channels and rates far beyond the limits.
    add(
        "flac_declares_10_hours",
        flac_streaminfo(flac, total_samples=SR * 36_000),
        "audio_too_long",
        "bomb.flac",
    )
    add(
        "flac_declares_max_samples",
        flac_streaminfo(flac, total_samples=(1 << 36) - 1),
        "audio_too_long",
        "bomb.flac",
    )
    add("flac_sample_rate_1mhz", flac_streaminfo(flac, sample_rate=1_000_000), "unsupported_audio", "x.flac")
    add("flac_sample_rate_0", flac_streaminfo(flac, sample_rate=0), "invalid_audio", "x.flac")
    # 2.4 MB of real 8-bit 4 kHz audio is 10 minutes: refused on the header, never decoded.
    add("wav_10_minutes_8bit_4khz", wav(b"\x80" * (4000 * 600), sr=4000, bits=8), "audio_too_long")
    add("wav_1024_channels", wav(pcm16(y)[: 2048 * 20], nch=1024), "unsupported_audio")
    add("wav_9_channels", encode(channels(y, 9)), "unsupported_audio")
    add("wav_sample_rate_2khz", encode(tone(1.5, 2000), 2000), "unsupported_audio")
    add("wav_sample_rate_768khz", wav(sr=768_000), "unsupported_audio")

    # Accepted: every supported encoding, rate, layout and harmless oddity.
    for subtype in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"):
        add(f"wav_{subtype.lower()}", encode(y, subtype=subtype), ACCEPT)
    add("wav_extensible", encode(y, format="WAVEX", subtype="PCM_16"), ACCEPT)
    add("wav_extensible_float_stereo", encode(channels(y, 2), format="WAVEX", subtype="FLOAT"), ACCEPT)
    add("flac_16", encode(y, format="FLAC", subtype="PCM_16"), ACCEPT, "clip.flac")
    add("flac_24", encode(y, format="FLAC", subtype="PCM_24"), ACCEPT, "clip.flac")
    add("flac_unknown_length", flac_streaminfo(flac, total_samples=0), ACCEPT, "stream.flac")
    add("ogg_vorbis", ogg, ACCEPT, "clip.ogg")
    add("mp3", mp3, ACCEPT, "clip.mp3")
    add("aiff", encode(y, format="AIFF", subtype="PCM_16"), ACCEPT, "clip.aiff")
    add("aifc_float", encode(y, format="AIFF", subtype="FLOAT"), ACCEPT, "clip.aifc")
    for sr in (8000, 22_050, 44_100, 48_000, 96_000):
        add(f"wav_{sr}_hz", encode(tone(1.5, sr), sr), ACCEPT)
    add("wav_stereo", encode(channels(y, 2)), ACCEPT)
    add("wav_5_1", encode(channels(y, 6)), ACCEPT)
    info = chunk(b"LIST", b"INFO" + chunk(b"INAM", b"a title\x00") + chunk(b"IART", b"someone\x00"))
    add("wav_list_info_after_data", wav(after=(info,)), ACCEPT)
    add("wav_list_info_before_fmt", wav(before=(info,)), ACCEPT)
    add("wav_bext_chunk", wav(before=(chunk(b"bext", b"\x00" * 602),)), ACCEPT)
    add("wav_junk_before_fmt", wav(before=(chunk(b"JUNK", b"\x00" * 28),)), ACCEPT)
    add("wav_unknown_chunk", wav(before=(chunk(b"zzzz", b"\x01" * 33),)), ACCEPT)
    add("flac_named_mp3", flac, ACCEPT, "clip.mp3")
    add("wav_named_txt", good, ACCEPT, "notes.txt")
    add("wav_no_extension", good, ACCEPT, "clip")
    add("float_peak_4", encode(y / np.abs(y).max() * 4.0, subtype="FLOAT"), ACCEPT)
    add("dc_offset", encode(y * 0.5 + 0.4), ACCEPT)
    add("path_traversal_name", good, ACCEPT, "../../etc/passwd.wav")
    return cases


def rejected() -> dict[str, Case]:
    return {k: v for k, v in corpus().items() if v.expected != ACCEPT}


def accepted() -> dict[str, Case]:
    return {k: v for k, v in corpus().items() if v.expected == ACCEPT}


@cache
def seeds() -> dict[str, bytes]:
    """Small valid files of each format, the starting points of tests/test_fuzz_decode.py."""
    y = tone(0.6)
    return {
        "wav": encode(y),
        "wav_float": encode(y, subtype="FLOAT"),
        "flac": encode(y, format="FLAC"),
        "ogg": encode(y, format="OGG", subtype="VORBIS"),
        "mp3": encode(y, format="MP3"),
        "aiff": encode(y, format="AIFF"),
    }
