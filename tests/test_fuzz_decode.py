"""Property-based fuzzing of the decoder: mutated valid WAV/FLAC/OGG/MP3/AIFF files.

Byte flips (mostly in the header), truncations, insertions, deletions and header fields
overwritten with boundary values: whatever comes out, only the `ser.errors` family may escape
`load_audio` + `clip_inputs`, and no call may take more than `MAX_SECONDS`.

Bounded: SER_FUZZ_EXAMPLES examples per test (default 200); raise it for a longer hunt, e.g.
SER_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz_decode.py. CI=1 derandomises the run.
"""

from __future__ import annotations

import os
import struct
import time

import hostile
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ser.audio import load_audio
from ser.errors import SERError
from ser.features import FeatureConfig
from ser.pipeline import clip_inputs

# soundfile's virtual-file seek callback raises on the negative offsets libsndfile asks for in some
# corrupt files; the error is reported back to libsndfile (→ InvalidAudioError), and Python prints it
# as an "exception ignored in cffi callback". Only bytes take that path: the service decodes files.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
MAX_SECONDS = 2.0
CONFIG = FeatureConfig()
FUZZ = settings(
    max_examples=int(os.environ.get("SER_FUZZ_EXAMPLES", "200")),
    deadline=None,  # Timing is asserted per call below, with a bound meant for a busy machine.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = hostile.seeds()
BOUNDARY = [
    0,
    1,
    2,
    3,
    7,
    8,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x10000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
]
# Where each seed's header fields are (byte offset, struct format) — RIFF/WAV, FLAC STREAMINFO,
# the first Ogg page, AIFF COMM; MP3 has its frame header in the first bytes after any ID3 tag.
FIELDS = {
    "wav": [(4, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (28, "<I"), (32, "<H"), (34, "<H"), (40, "<I")],
    "flac": [(4, ">I"), (8, ">H"), (10, ">H"), (18, ">I"), (21, ">I"), (22, ">I"), (26, ">I")],
    "ogg": [(5, "<B"), (6, "<Q"), (14, "<I"), (18, "<I"), (26, "<B"), (27, "<B"), (39, "<I"), (40, "<I")],
    "aiff": [(4, ">I"), (16, ">I"), (20, ">H"), (22, ">I"), (26, ">H"), (28, ">H"), (30, ">I")],
    "mp3": [(0, ">I"), (1, ">H"), (2, ">B"), (3, ">B")],
}
FIELDS["wav_float"] = FIELDS["wav"]


def check(data: bytes) -> None:
    """The property: a clean result or a `SERError`, quickly."""
    started = time.perf_counter()
    try:
        y = load_audio(data)
        assert y.dtype == np.float32 and np.isfinite(y).all()
        clip_inputs(y, CONFIG)
    except SERError as e:
        assert e.code and e.message and 400 <= e.http_status < 500
    elapsed = time.perf_counter() - started
    assert elapsed < MAX_SECONDS, f"{elapsed:.2f} s for {len(data)} bytes"


def _overwrite(data: bytearray, at: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if at + size <= len(data):
        data[at : at + size] = struct.pack(fmt, value & ((1 << (8 * size)) - 1))


@st.composite
def mutated(draw, kinds=("flip", "truncate", "insert", "delete", "field")) -> bytes:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(kinds))
        n = len(data)
        if n == 0:
            break
        # Most mutations land in the first 256 bytes, where the header is.
        at = draw(st.one_of(st.integers(0, min(n, 256) - 1), st.integers(0, n - 1)))
        if kind == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:
            offset, fmt = draw(st.sampled_from(FIELDS[name]))
            if name == "mp3":  # Past an ID3v2 tag, if the encoder wrote one.
                offset += _id3_size(data)
            value = draw(st.one_of(st.sampled_from(BOUNDARY), st.integers(0, 0xFFFFFFFF)))
            _overwrite(data, offset, fmt, value)
    return bytes(data)


def _id3_size(data: bytes | bytearray) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = data[6:10]
    return 10 + ((size[0] & 0x7F) << 21 | (size[1] & 0x7F) << 14 | (size[2] & 0x7F) << 7 | (size[3] & 0x7F))


def test_seeds_are_valid():
    for data in SEEDS.values():
        assert len(load_audio(data)) > 0


@FUZZ
@given(mutated())
def test_mutated_files_raise_only_ser_errors(data):
    check(data)


@FUZZ
@given(mutated(kinds=("field",)))
def test_header_fields_overwritten_with_boundary_values(data):
    check(data)


@FUZZ
@given(st.sampled_from(sorted(SEEDS)), st.data())
def test_every_truncation_of_the_header(name, data):
    seed = SEEDS[name]
    check(seed[: data.draw(st.integers(0, min(len(seed), 512)))])


@FUZZ
@given(st.binary(min_size=0, max_size=4096))
def test_arbitrary_bytes(data):
    check(data)


@FUZZ
@given(
    st.sampled_from([b"RIFF", b"fLaC", b"OggS", b"ID3\x04", b"FORM", b"\xff\xfb"]), st.binary(max_size=2048)
)
def test_magic_numbers_followed_by_junk(magic, rest):
    check(magic + rest)
