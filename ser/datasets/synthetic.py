"""A synthetic, TESS-shaped corpus of speech-like voiced sounds: the offline default and test fixture.

Model of speech (source-filter, as in classic formant synthesisers):

* **Utterance.** A fixed two-syllable carrier ("say the", like TESS's "Say the word ...") and then
  a pseudo-word (``w000``, ``w001``, ...) of 1-2 syllables, 3-4 syllables in all. A syllable is an
  optional unvoiced consonant (a band-passed noise burst: s, sh, f, or a stop's closure + burst)
  followed by a voiced vowel. The word's phonetics depend only on its index and the seed, so - as
  in TESS, where every speaker says the same 200 words in every emotion - content carries no label.
* **Source.** A Rosenberg glottal pulse train (differentiated, for lip radiation) follows an f0
  contour over the whole utterance, with per-cycle jitter (period) and shimmer (amplitude), optional
  creak (alternating weak/long cycles) and tremor, plus aspiration noise gated by the glottal flow
  (breathiness). The open quotient sets the voice quality: pressed (small) is bright, lax is dark.
  A first-order tilt filter brightens or darkens the source further.
* **Filter.** Each vowel goes through a cascade of 4 formant resonators; formants come from a vowel
  table, scaled per speaker (vocal-tract length) and slightly per emotion (smiling raises them).
* **Envelope and level.** Raised-cosine attack/release per syllable, a stressed syllable louder,
  the vowels normalised and then set to a level = speaker loudness + emotion energy + noise.
  0.2-0.4 s of very low noise before and after; clips last 1.2-2.8 s like TESS.

Emotions change the prosody and voice quality (table `STYLES`; every value also gets within-class
random variation, and each speaker has its own expressiveness, so the task is learnable but not
trivial): pitch level (semitones from the speaker's base f0), pitch range, contour shape (surprise
rises then falls, sad falls, angry is high and flat with sharp accents, happy is wide and bouncy),
syllable rate, energy, jitter/shimmer, open quotient, spectral tilt and breathiness.

Files follow TESS's layout ``<out>/<SPK>_<code>/<SPK>_<word>_<code>.wav`` (16-bit PCM, mono) next
to a ``SYNTHETIC.json`` marker recording the generator version and parameters. Every clip has its
own random stream (seed, speaker, emotion, index), so the same clip comes out byte for byte whatever
else is generated. Bump `GENERATOR_VERSION` whenever the sound changes: the marker then no longer
matches and existing corpora are rewritten.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from ser.datasets.base import Manifest, Skipped, iter_audio_files, probe_file
from ser.labels import EMOTIONS, TESS_LABELS

DATASET = "synthetic"
MARKER = "SYNTHETIC.json"
GENERATOR_VERSION = 1
DEFAULT_SPEAKERS: tuple[str, ...] = ("SYA", "SYB", "SYC", "SYD")

# Canonical emotion -> the code TESS uses in its file names.
EMOTION_CODES: dict[str, str] = {e: ("ps" if e == "pleasant_surprise" else e) for e in EMOTIONS}


@dataclass(frozen=True)
class EmotionStyle:
    pitch_shift: float  # semitones above the speaker's base f0
    pitch_range: float  # semitones spanned by the contour
    contour: str  # key of CONTOURS
    rate: float  # syllables per second
    energy_db: float  # level relative to neutral
    jitter: float  # relative std of the glottal period, per cycle
    shimmer: float  # relative std of the pulse amplitude, per cycle
    open_quotient: float  # fraction of the period the glottis is open: small = pressed, bright
    tilt: float  # > 0 pre-emphasis (bright), < 0 low-pass (dark)
    breath: float  # aspiration noise relative to the voiced source
    tremor: float  # semitones of 5-8 Hz f0 tremor
    creak: float  # depth of alternating weak cycles (vocal fry)
    formant_shift: float  # factor on all formants (smiling > 1)
    attack_ms: float  # syllable onset time
    stress_db: float  # extra level of the stressed syllable


# One row per emotion, columns in EmotionStyle's field order.
# fmt: off
STYLES: dict[str, EmotionStyle] = {name: EmotionStyle(*row) for name, row in {
    #                  shift range contour    rate  dB   jit  shim  oq  tilt brth trem creak fmt att stress
    "angry":             (4,   4, "accented",  3.4,  6, .012, .06, .35,  .6, .02, 0,  .05, 1.08, 12, 5),
    "disgust":           (-2,  6, "fall_rise", 2.3, -1, .020, .09, .45, -.2, .12, 0,  .30, 0.97, 40, 3),
    "fear":              (7,   3, "level",     4.5, -1, .025, .08, .65, -.2, .25, 1., 0,   1.03, 25, 1),
    "happy":             (5,   9, "bouncy",    3.9, 3.5, .008, .04, .45, .35, .04, 0, 0,   1.06, 20, 4),
    "neutral":           (0,   3, "declining", 3.0,  0, .006, .03, .55,  0,  .06, 0,  0,   1.00, 35, 2),
    "pleasant_surprise": (6,  12, "rise_fall", 2.5,  3, .008, .04, .55,  .1, .15, 0,  0,   1.02, 30, 3),
    "sad":               (-3,  2, "falling",   2.1, -6, .010, .05, .75, -.6, .35, .2, .05, 0.96, 70, 1),
}.items()}
# fmt: on


@dataclass(frozen=True)
class Voice:
    base_f0: float  # Hz, the speaker's neutral pitch
    formant_scale: float  # shorter vocal tract -> higher formants
    gain_db: float  # how loud the speaker records
    expressiveness: float  # scales how far emotions move pitch and energy away from neutral


VOICES: dict[str, Voice] = {
    "SYA": Voice(115.0, 0.95, 1.5, 1.1),
    "SYB": Voice(215.0, 1.10, -2.5, 0.9),
    "SYC": Voice(150.0, 1.0, 2.5, 0.85),
    "SYD": Voice(185.0, 1.06, -1.0, 1.05),
}

# Vowel formants F1-F4 (Hz) of an adult male voice (Peterson & Barney-like averages).
VOWELS: tuple[tuple[float, float, float, float], ...] = (
    (730, 1090, 2440, 3300),  # a
    (270, 2290, 3010, 3500),  # i
    (300, 870, 2240, 3300),  # u
    (530, 1840, 2480, 3400),  # e
    (570, 840, 2410, 3300),  # o
    (660, 1720, 2410, 3350),  # ae
    (490, 1350, 1690, 3300),  # er
    (390, 1990, 2550, 3450),  # ih
    (520, 1190, 2390, 3300),  # uh
)
BANDWIDTHS = np.array([80.0, 100.0, 140.0, 200.0])
# Consonant noise bands (Hz); a stop ("t", "k") is a closure (silence) then a short burst.
CONSONANTS: dict[str, tuple[float, float]] = {
    "s": (4000, 7500),
    "sh": (2000, 4200),
    "f": (1200, 7000),
    "t": (2500, 6500),
    "k": (1200, 3500),
}
REFERENCE_DB = -26.0  # vowel RMS of a neutral clip from a 0 dB speaker, in dBFS
CONSONANT_DB = -13.0  # consonant RMS relative to the vowels
NOISE_FLOOR_DB = -68.0  # the "near silence" around and under the speech
MIN_SECONDS, MAX_SECONDS = 1.2, 2.8


@dataclass(frozen=True)
class Syllable:
    vowel: int
    consonant: str | None
    weight: float  # relative duration
    stressed: bool


# Every clip opens with the same carrier ("say the ..."), as every TESS clip is "Say the word X":
# fixed content keeps the word's phonetics from drowning the emotion in clip-level averages.
CARRIER: tuple[Syllable, ...] = (
    Syllable(vowel=3, consonant="s", weight=0.9, stressed=False),
    Syllable(vowel=8, consonant="t", weight=0.6, stressed=False),
)


def make_word(index: int, seed: int) -> tuple[Syllable, ...]:
    """Carrier + the 1-2 syllables of pseudo-word ``index``: the same for every speaker and emotion."""
    rng = np.random.default_rng([seed, 0x574F5244, index])  # "WORD"
    count = int(rng.integers(1, 3))
    stressed = int(rng.integers(count))
    kinds = [None, *CONSONANTS]
    word = tuple(
        Syllable(
            vowel=int(rng.integers(len(VOWELS))),
            consonant=kinds[int(rng.integers(len(kinds)))],
            weight=float(rng.uniform(0.8, 1.2)) * (1.4 if i == stressed else 1.0),
            stressed=i == stressed,
        )
        for i in range(count)
    )
    return CARRIER + word


def voice_for(speaker: str) -> Voice:
    """A speaker's voice: from `VOICES`, or derived from its name so any id gives a stable voice."""
    if speaker in VOICES:
        return VOICES[speaker]
    rng = np.random.default_rng([0x564F4943, zlib.crc32(speaker.encode())])  # "VOIC"
    f0 = float(rng.uniform(110, 230))
    # Higher voices tend to come with shorter vocal tracts, hence higher formants.
    scale = 0.9 + 0.25 * (f0 - 110) / 120 + float(rng.normal(0, 0.02))
    return Voice(f0, scale, float(rng.uniform(-3, 3)), float(rng.uniform(0.85, 1.15)))


def sample_style(emotion: str, voice: Voice, rng: np.random.Generator) -> EmotionStyle:
    """One clip's concrete parameters: the emotion's table row, the speaker's habits and chance."""
    s = STYLES[emotion]
    x = voice.expressiveness

    def vary(value: float, spread: float) -> float:  # multiplicative variation
        return value * float(rng.uniform(1 - spread, 1 + spread))

    return EmotionStyle(
        pitch_shift=x * s.pitch_shift + float(rng.normal(0, 1.3)),
        pitch_range=x * vary(s.pitch_range, 0.3),
        contour=s.contour,
        rate=vary(s.rate, 0.15),
        energy_db=x * s.energy_db + float(rng.normal(0, 1.8)),
        jitter=vary(s.jitter, 0.3),
        shimmer=vary(s.shimmer, 0.3),
        open_quotient=float(np.clip(s.open_quotient + rng.normal(0, 0.05), 0.3, 0.8)),
        tilt=float(np.clip(s.tilt + rng.normal(0, 0.15), -0.8, 0.8)),
        breath=vary(s.breath, 0.4),
        tremor=vary(s.tremor, 0.3),
        creak=vary(s.creak, 0.3),
        formant_shift=s.formant_shift * float(rng.uniform(0.98, 1.02)),
        attack_ms=vary(s.attack_ms, 0.3),
        stress_db=vary(s.stress_db, 0.3),
    )


# Contour shapes in units of the pitch range. t: utterance time 0..1, u: time within the syllable
# 0..1, parity: +-1 alternating per syllable, stress: 1 on the stressed syllable.
Contour = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
CONTOURS: dict[str, Contour] = {
    "declining": lambda t, u, p, s: 0.5 - t + 0.25 * s * np.sin(np.pi * u),
    "accented": lambda t, u, p, s: 0.35 * np.sin(np.pi * u) ** 2 * (1 + s) - 0.15 * t,
    "bouncy": lambda t, u, p, s: 0.45 * np.sin(np.pi * u) + 0.25 * p + 0.2 * t,
    "rise_fall": lambda t, u, p, s: np.exp(-(((t - 0.65) / 0.2) ** 2)) - 0.4,
    "falling": lambda t, u, p, s: 0.4 - 0.8 * np.sqrt(t),
    "level": lambda t, u, p, s: 0.2 * np.sin(np.pi * u) - 0.1 * t,
    "fall_rise": lambda t, u, p, s: 2.5 * (t - 0.55) ** 2 - 0.3,
}


@dataclass(frozen=True)
class Timeline:
    """Sample positions of one clip: consonant and vowel spans per syllable, and the total length."""

    consonants: tuple[tuple[int, int], ...]
    vowels: tuple[tuple[int, int], ...]
    total: int


def make_timeline(word: tuple[Syllable, ...], rate: float, rng: np.random.Generator, sr: int) -> Timeline:
    durations = np.array([s.weight for s in word]) / rate
    gaps = rng.uniform(0.01, 0.05, len(word))
    lead, trail = rng.uniform(0.2, 0.4, 2)
    speech = durations.sum() + gaps.sum()
    if lead + speech + trail > MAX_SECONDS - 0.02:  # squeeze the speech to fit, keeping the silences
        factor = (MAX_SECONDS - 0.02 - lead - trail) / speech
        durations, gaps, speech = durations * factor, gaps * factor, speech * factor
    short = MIN_SECONDS + 0.02 - (lead + speech + trail)
    if short > 0:  # too short: pad the silences rather than slow the speech (tempo is a cue)
        lead, trail = lead + short / 2, trail + short / 2
    consonants, vowels, pos = [], [], lead
    for syllable, dur, gap in zip(word, durations, gaps, strict=True):
        cons = dur * float(rng.uniform(0.2, 0.32)) if syllable.consonant else 0.0
        consonants.append((int(pos * sr), int((pos + cons) * sr)))
        vowels.append((int((pos + cons) * sr), int((pos + dur) * sr)))
        pos += dur + gap
    return Timeline(tuple(consonants), tuple(vowels), int((pos + trail) * sr))


def f0_contour(
    word: tuple[Syllable, ...],
    timeline: Timeline,
    style: EmotionStyle,
    voice: Voice,
    rng: np.random.Generator,
    sr: int,
) -> np.ndarray:
    """Per-sample f0 (Hz) over the whole clip; only its values inside the vowels are heard."""
    n = timeline.total
    start, end = timeline.vowels[0][0], timeline.vowels[-1][1]
    t = np.clip((np.arange(n) - start) / max(end - start, 1), 0, 1) ** rng.uniform(0.8, 1.25)
    u, parity, stress = np.zeros(n), np.zeros(n), np.zeros(n)
    for i, ((a, b), syllable) in enumerate(zip(timeline.vowels, word, strict=True)):
        u[a:b] = np.linspace(0, 1, b - a, endpoint=False)
        parity[a:b] = 1 if i % 2 == 0 else -1
        stress[a:b] = float(syllable.stressed)
    semitones = style.pitch_shift + style.pitch_range * CONTOURS[style.contour](t, u, parity, stress)
    seconds = np.arange(n) / sr
    semitones += style.tremor * np.sin(2 * np.pi * rng.uniform(5, 8) * seconds + rng.uniform(0, 2 * np.pi))
    # Slow random drift, so two clips of one class never share an exact melody.
    semitones += 0.6 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * seconds + rng.uniform(0, 2 * np.pi))
    return np.clip(voice.base_f0 * 2.0 ** (semitones / 12), 60.0, 600.0)


def rosenberg(phase: np.ndarray, open_quotient: float) -> np.ndarray:
    """Rosenberg glottal flow for the fractional phase 0..1 of each sample within its cycle."""
    rise, fall = 0.66 * open_quotient, 0.34 * open_quotient
    opening = 0.5 * (1 - np.cos(np.pi * np.minimum(phase / rise, 1.0)))
    closing = np.cos(0.5 * np.pi * np.clip((phase - rise) / fall, 0.0, 1.0))
    return np.where(phase < rise, opening, closing)


def glottal_source(f0: np.ndarray, style: EmotionStyle, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Differentiated pulse train with jitter, shimmer and creak, plus flow-gated aspiration."""
    cycles = int(f0.sum() / sr) + 4
    jitter = rng.normal(0, style.jitter, cycles)
    # Creak: every other cycle longer and weaker (period doubling, as in vocal fry), growing towards
    # the end of the utterance, where speakers run out of air and pitch.
    depth, odd = style.creak * np.linspace(0.2, 1.0, cycles), np.arange(cycles) % 2
    jitter += 0.2 * depth * (2 * odd - 1)
    cycle = np.floor(np.cumsum(f0) / sr).astype(int)  # cycle index without jitter, to look up its jitter
    phase = np.cumsum(f0 / (1 + jitter[cycle])) / sr
    index = np.minimum(phase.astype(int), cycles - 1)
    flow = rosenberg(phase - np.floor(phase), style.open_quotient)
    amplitude = 1 + rng.normal(0, style.shimmer, cycles) - depth * odd
    pulses = np.diff(flow, prepend=0.0) * amplitude[index]
    aspiration = rng.normal(0, 1, len(f0)) * (0.3 + flow) * style.breath * np.std(pulses)
    source = pulses + aspiration
    tilt_b = [1.0, -0.9 * max(style.tilt, 0.0)]  # pre-emphasis zero: brighter
    tilt_a = [1.0, -0.85 * max(-style.tilt, 0.0)]  # one-pole low-pass: darker
    return signal.lfilter(tilt_b, tilt_a, source)


def formant_sos(formants: np.ndarray, sr: int, bandwidth_scale: float = 1.0) -> np.ndarray:
    """Cascade of 2-pole resonators (unity gain at DC, as in Klatt's cascade synthesiser)."""
    formants = np.minimum(formants, 0.45 * sr)
    r = np.exp(-np.pi * BANDWIDTHS * bandwidth_scale / sr)
    a1, a2 = -2 * r * np.cos(2 * np.pi * formants / sr), r**2
    gain = 1 + a1 + a2
    zeros = np.zeros_like(gain)
    return np.stack([gain, zeros, zeros, np.ones_like(gain), a1, a2], axis=1)


@functools.lru_cache(maxsize=64)
def consonant_sos(kind: str, sr: int) -> np.ndarray:
    low, high = CONSONANTS[kind]  # squeezed below Nyquist for low sample rates
    return signal.butter(
        4, [min(low, 0.35 * sr), min(high, 0.45 * sr)], btype="bandpass", fs=sr, output="sos"
    )


def envelope(n: int, attack: int, release: int, decay: float) -> np.ndarray:
    """Raised-cosine attack and release around a slightly decaying sustain."""
    env = np.linspace(1.0, 1.0 - decay, n)
    attack, release = min(attack, n // 2), min(release, n // 2)
    env[:attack] *= 0.5 * (1 - np.cos(np.linspace(0, np.pi, attack)))
    env[n - release :] *= 0.5 * (1 + np.cos(np.linspace(0, np.pi, release)))
    return env


def consonant(kind: str, n: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A noise burst; a stop is mostly closure (silence) with a short burst at its end."""
    noise = signal.sosfilt(consonant_sos(kind, sr), rng.normal(0, 1, n))
    if kind in ("t", "k"):
        burst = min(n, int(0.015 * sr))
        noise[: n - burst] = 0.0
        noise[n - burst :] *= np.exp(-np.linspace(0, 4, burst))
        return noise
    return noise * envelope(n, n // 3, n // 3, 0.0)


def synthesize(
    word: tuple[Syllable, ...], voice: Voice, style: EmotionStyle, rng: np.random.Generator, sr: int
) -> np.ndarray:
    """One clip as float samples in [-1, 1]."""
    timeline = make_timeline(word, style.rate, rng, sr)
    source = glottal_source(f0_contour(word, timeline, style, voice, rng, sr), style, rng, sr)
    speech = np.zeros(timeline.total)
    bandwidth_scale = 1 + style.breath  # breathy voices have damped, wider formants
    for (a, b), syllable in zip(timeline.vowels, word, strict=True):
        formants = np.array(VOWELS[syllable.vowel]) * voice.formant_scale * style.formant_shift
        formants *= rng.uniform(0.95, 1.05, 4)  # coarticulation and speaker slop
        gain = 10 ** ((style.stress_db if syllable.stressed else 0.0) / 20)
        env = envelope(b - a, int(style.attack_ms * sr / 1000), int(0.05 * sr), float(rng.uniform(0, 0.4)))
        speech[a:b] = signal.sosfilt(formant_sos(formants, sr, bandwidth_scale), source[a:b] * env) * gain
    voiced = np.concatenate([speech[a:b] for a, b in timeline.vowels])
    level = REFERENCE_DB + voice.gain_db + style.energy_db
    speech *= 10 ** (level / 20) / (np.sqrt(np.mean(voiced**2)) + 1e-12)
    consonant_rms = 10 ** ((level + CONSONANT_DB + rng.normal(0, 2)) / 20)
    for (a, b), syllable in zip(timeline.consonants, word, strict=True):
        if syllable.consonant and b > a:
            burst = consonant(syllable.consonant, b - a, rng, sr)
            speech[a:b] += burst * consonant_rms / (np.sqrt(np.mean(burst[burst != 0] ** 2)) + 1e-12)
    speech += rng.normal(0, 10 ** (NOISE_FLOOR_DB / 20), timeline.total)
    peak = np.max(np.abs(speech))
    return speech * (0.98 / peak) if peak > 0.98 else speech


def clip_seed(seed: int, speaker: str, emotion: str, index: int) -> list[int]:
    """Each clip's own random stream, so a clip does not depend on how many others are made."""
    return [seed, zlib.crc32(speaker.encode()), EMOTIONS.index(emotion), index]


def write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    # Quantise ourselves rather than leave rounding to libsndfile: the bytes are then ours to pin.
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype(np.int16)
    sf.write(str(path), pcm, sr, subtype="PCM_16", format="WAV")


def _marker_data(clips_per_class: int, speakers: tuple[str, ...], sample_rate: int, seed: int) -> dict:
    return {
        "generator": "ser.datasets.synthetic",
        "version": GENERATOR_VERSION,
        "parameters": {
            "clips_per_class": clips_per_class,
            "speakers": list(speakers),
            "sample_rate": sample_rate,
            "seed": seed,
        },
        "files": clips_per_class * len(speakers) * len(EMOTIONS),
        "styles": {e: asdict(s) for e, s in STYLES.items()},
    }


def _is_current(out: Path, expected: dict) -> bool:
    """True when ``out`` already holds this exact corpus (same marker, every file present)."""
    try:
        found = json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return found == expected and len(list(out.glob("*_*/*_*_*.wav"))) == expected["files"]


def _remove_old_clips(out: Path, speakers: tuple[str, ...]) -> None:
    """Drop clips an earlier or interrupted run left (e.g. more clips per class); only our own names."""
    old: list[str] = []
    marker = out / MARKER
    # No readable marker: clean only the speakers we are about to write.
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        old = [s for s in json.loads(marker.read_text())["parameters"]["speakers"] if _valid_speaker(s)]
    marker.unlink(missing_ok=True)  # Until the new set is complete, the folder is not a finished corpus.
    for speaker in {*old, *speakers}:
        for code in EMOTION_CODES.values():
            for path in (out / f"{speaker}_{code}").glob(f"{speaker}_w[0-9][0-9][0-9]*_{code}.wav"):
                path.unlink()


def _valid_speaker(speaker: object) -> bool:
    return isinstance(speaker, str) and re.fullmatch(r"[A-Za-z0-9]+", speaker) is not None


def _check_arguments(clips_per_class: int, speakers: tuple[str, ...], sample_rate: int, seed: int) -> None:
    # Speaker ids become the first "_"-separated field of every file name, so they must not hold "_".
    bad = [s for s in speakers if not _valid_speaker(s)]
    if not speakers or bad or len(set(speakers)) != len(speakers):
        raise ValueError(f"speakers must be distinct, non-empty and alphanumeric; got {list(speakers)}")
    if clips_per_class < 1 or seed < 0 or sample_rate < 8000:
        raise ValueError(
            f"need clips_per_class >= 1, seed >= 0, sample_rate >= 8000; "
            f"got {clips_per_class}, {seed}, {sample_rate}"
        )


def generate(
    out_dir: str | Path,
    *,
    clips_per_class: int = 40,
    speakers: tuple[str, ...] = DEFAULT_SPEAKERS,
    sample_rate: int = 16000,
    seed: int = 0,
) -> Path:
    """Write the corpus under ``out_dir`` (skipped when it is already there) and return the folder."""
    out = Path(out_dir)
    speakers = tuple(speakers)
    _check_arguments(clips_per_class, speakers, sample_rate, seed)
    expected = _marker_data(clips_per_class, speakers, sample_rate, seed)
    if _is_current(out, expected):
        return out
    out.mkdir(parents=True, exist_ok=True)
    _remove_old_clips(out, speakers)
    for speaker in speakers:
        voice = voice_for(speaker)
        for emotion, code in EMOTION_CODES.items():
            folder = out / f"{speaker}_{code}"
            folder.mkdir(exist_ok=True)
            for index in range(clips_per_class):
                rng = np.random.default_rng(clip_seed(seed, speaker, emotion, index))
                style = sample_style(emotion, voice, rng)
                samples = synthesize(make_word(index, seed), voice, style, rng, sample_rate)
                write_wav(folder / f"{speaker}_w{index:03d}_{code}.wav", samples, sample_rate)
    # The marker goes last: a half-written folder never looks finished.
    (out / MARKER).write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return out


def _parse(path: Path) -> tuple[str | None, str | None]:
    """(speaker, canonical emotion) from a name like ``SYA_w017_ps``."""
    parts = path.stem.split("_")
    if len(parts) < 3 or not parts[0]:
        return None, None
    for start in range(2, len(parts)):  # the longest tail naming an emotion, as in TESS names
        tail = "_".join(parts[start:]).lower()
        if tail in TESS_LABELS:
            return parts[0], TESS_LABELS[tail]
    return parts[0], None


def load(root: str | Path) -> Manifest:
    root = Path(root)
    manifest = Manifest()
    for path in iter_audio_files(root):
        speaker, emotion = _parse(path)
        if speaker is None or emotion is None:
            manifest.skipped.append(Skipped(str(path), "name does not follow <SPEAKER>_<word>_<emotion>"))
            continue
        probe_file(path, DATASET, emotion, speaker, manifest)
    return manifest


def looks_like(root: Path) -> bool:
    return (Path(root) / MARKER).is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ser.datasets.synthetic", description="Write the synthetic TESS-shaped corpus."
    )
    parser.add_argument("--out", required=True, help="folder to write into")
    parser.add_argument("--clips-per-class", type=int, default=40, help="clips per speaker and emotion")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speakers", default=",".join(DEFAULT_SPEAKERS), help="comma-separated ids")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args(argv)
    speakers = tuple(s.strip() for s in args.speakers.split(",") if s.strip())
    try:
        _check_arguments(args.clips_per_class, speakers, args.sample_rate, args.seed)
    except ValueError as e:
        parser.error(str(e))
    started = time.perf_counter()
    expected = _marker_data(args.clips_per_class, speakers, args.sample_rate, args.seed)
    fresh = not _is_current(Path(args.out), expected)
    out = generate(
        args.out,
        clips_per_class=args.clips_per_class,
        speakers=speakers,
        sample_rate=args.sample_rate,
        seed=args.seed,
    )
    what = "wrote" if fresh else "already up to date:"
    print(
        f"{what} {expected['files']} clips ({len(speakers)} speakers x {len(EMOTIONS)} emotions x "
        f"{args.clips_per_class}) in {out} [{time.perf_counter() - started:.1f} s]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
