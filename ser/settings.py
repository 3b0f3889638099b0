"""Service settings, each from one environment variable with a documented default.

| variable | default | meaning |
| --- | --- | --- |
| SER_MODEL | ser_lstm:latest | model tag in the BentoML store |
| SER_MAX_UPLOAD_BYTES | 20000000 | largest upload accepted, per file and per request body |
| SER_MAX_DURATION_S | 30 | longest audio for /predict and /predict_batch |
| SER_MAX_TIMELINE_S | 600 | longest audio for /timeline |
| SER_MIN_DURATION_S | 0.25 | shortest audio accepted |
| SER_MAX_BATCH_FILES | 16 | most files in one /predict_batch request |
| SER_MAX_BATCH_SIZE | 64 | most model inputs in one adaptive batch; 1 turns adaptive batching off |
| SER_MAX_LATENCY_MS | 5000 | longest an input may wait in the batch queue before a 503 |
| SER_RUNTIME | litert | the model's LiteRT export (no TensorFlow), or `keras` (ser/runtime.py) |
| SER_TF_THREADS | 1 | threads of the model's runtime (LiteRT, or TensorFlow's pools) per worker |
| SER_LITERT_ENGINE | compiled | LiteRT's compiled model with XNNPACK's weight cache, or its `interpreter` |
| SER_CONNECTION_BALANCE | on | `python -m ser.prefork`: a worker over its share of connections closes some |
| SER_WORKERS | usable CPUs | server processes, each with the model and its own batcher |
| SER_TIMEOUT_S | 60 | request timeout (504 after it) |
| SER_MAX_CONCURRENCY | 256 | requests in flight before 429 |
| SER_API_KEY | (unset: open) | API key (≥ 16 characters): `Authorization: Bearer <key>` on all but probes |
| SER_API_KEY_FILE | (unset) | file holding the API key (a mounted secret), instead of SER_API_KEY |
| SER_DEMO_PUBLIC | 0 | 1: /ui needs no key even when one is set (the model is then open through it) |
| SER_CORS_ORIGINS | (unset: closed) | browser origins allowed to call the API, comma-separated, or `*` |
| SER_DEMO | auto | the Gradio demo at /ui: `auto` when installed, `0` never, `1` required |
| SER_TTA_SPEEDS | (unset: off) | speed copies of each clip (`0.9,1.1`), averaged with it; not timelines |
| SER_BATCH_WAIT | none | `none`: a batch starts when the model is free; `learnt`: BentoML's wait |
| SER_BATCH_DISPATCH | event | with `none`: the batcher wakes on arrivals and finished batches; `poll`: 1 ms |
| SER_INLINE_DECODE_SAMPLES | 480000 | /predict audio of ≤ this many frames × channels: decoded on the loop |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ser.audio import AudioLimits
from ser.security import parse_origins, read_api_key

# One OpenBLAS thread per worker (the environment may override): the features' mel projection is a
# small matmul run from many request threads at once, and OpenBLAS's own threads then spin against
# them. Measured at 32 concurrent /predict on 2 cores: entry CPU 14 → 6.5 ms per request, 70 → 140 req/s.
# Two malloc arenas per worker, not glibc's 8 per core: requests decode and featurise in several
# threads, and each arena keeps its own free memory (see also ser/memory.py).
WORKER_ENVS = [{"name": "OPENBLAS_NUM_THREADS", "value": "1"}, {"name": "MALLOC_ARENA_MAX", "value": "2"}]


def _env(name: str, default: float | int | str, cast=float, *, allow_zero: bool = False):
    """``name`` cast to ``cast``, or ``default`` when unset; numbers must be positive (or 0 with
    ``allow_zero``, where 0 turns a feature off)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {cast.__name__}") from None
    if isinstance(value, (int, float)) and (value < 0 or (value == 0 and not allow_zero)):
        raise ValueError(f"{name}={raw!r} must be {'≥ 0' if allow_zero else 'positive'}")
    return value


BATCH_WAITS = ("none", "learnt")  # ser.compat.batch_wait_policy says what each does.
BATCH_DISPATCHES = ("event", "poll")  # ser.batching says why.


def parse_choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; allowed: {', '.join(allowed)}")
    return value


TTA_SPEED_RANGE = (0.7, 1.4)  # The speeds training's augmentations span (training/data.py).


def parse_speeds(raw: str) -> tuple[float, ...]:
    """SER_TTA_SPEEDS: comma-separated speeds within `TTA_SPEED_RANGE`, other than 1 (the recording)."""
    low, high = TTA_SPEED_RANGE
    speeds = []
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        try:
            speed = float(part)
        except ValueError:
            raise ValueError(f"SER_TTA_SPEEDS: {part!r} is not a number") from None
        if not low <= speed <= high or speed == 1:
            raise ValueError(f"SER_TTA_SPEEDS: {part!r} must be within {low}–{high} and not 1 (the clip)")
        speeds.append(speed)
    if len(set(speeds)) != len(speeds):
        raise ValueError(f"SER_TTA_SPEEDS={raw!r} repeats a speed")
    return tuple(speeds)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a container's cpuset narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    model: str
    max_upload_bytes: int
    max_duration_s: float
    max_timeline_s: float
    min_duration_s: float
    max_batch_files: int
    max_batch_size: int
    max_latency_ms: int
    tf_threads: int
    workers: int
    timeout_s: float
    max_concurrency: int
    api_key: str | None = field(default=None, repr=False)  # Never in a log line.
    demo_public: bool = False
    cors_origins: tuple[str, ...] = ()
    tta_speeds: tuple[float, ...] = ()  # Test-time speed copies of /predict clips (ser.pipeline.clip_copies).
    batch_wait: str = "none"
    batch_dispatch: str = "event"
    inline_decode_samples: int = 480_000  # 10 s at 48 kHz mono: a few ms of decode + features.

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            model=_env("SER_MODEL", "ser_lstm:latest", str),
            max_upload_bytes=_env("SER_MAX_UPLOAD_BYTES", 20_000_000, int),
            max_duration_s=_env("SER_MAX_DURATION_S", 30.0),
            max_timeline_s=_env("SER_MAX_TIMELINE_S", 600.0),
            min_duration_s=_env("SER_MIN_DURATION_S", 0.25),
            max_batch_files=_env("SER_MAX_BATCH_FILES", 16, int),
            max_batch_size=_env("SER_MAX_BATCH_SIZE", 64, int),
            max_latency_ms=_env("SER_MAX_LATENCY_MS", 5000, int),
            tf_threads=_env("SER_TF_THREADS", 1, int),
            workers=_env("SER_WORKERS", usable_cpus(), int),
            timeout_s=_env("SER_TIMEOUT_S", 60.0),
            max_concurrency=_env("SER_MAX_CONCURRENCY", 256, int),
            api_key=read_api_key(),
            demo_public=os.environ.get("SER_DEMO_PUBLIC", "0") == "1",
            cors_origins=parse_origins(os.environ.get("SER_CORS_ORIGINS", "")),
            tta_speeds=parse_speeds(os.environ.get("SER_TTA_SPEEDS", "")),
            batch_wait=parse_choice("SER_BATCH_WAIT", "none", BATCH_WAITS),
            batch_dispatch=parse_choice("SER_BATCH_DISPATCH", "event", BATCH_DISPATCHES),
            inline_decode_samples=_env("SER_INLINE_DECODE_SAMPLES", 480_000, int, allow_zero=True),
        )

    @property
    def predict_limits(self) -> AudioLimits:
        return AudioLimits(self.max_upload_bytes, self.max_duration_s, self.min_duration_s)

    @property
    def timeline_limits(self) -> AudioLimits:
        return AudioLimits(self.max_upload_bytes, self.max_timeline_s, self.min_duration_s)
