"""The ser BentoML service: audio in, emotion probabilities out.

    bentoml serve service:SER            # http://localhost:3000, Swagger UI at /, demo at /ui

One service, `ser` (`SER`), in SER_WORKERS processes. Each request decodes and featurises its
upload (a short clip on the event loop, longer audio in a worker thread: `SER._decodes_inline`),
then awaits the batchable `infer` method (in a thread), the only place the model
runs: BentoML's adaptive batcher merges inputs from concurrent requests there (every input has
the same (frames, features) shape, so batches concatenate), starting a batch as soon as the
model is free (SER_BATCH_WAIT, `ser.compat.no_wait_optimizer`), woken by events rather than a
1 ms poll (SER_BATCH_DISPATCH, `ser.batching`). The endpoints reach that batcher
in-process (`ser.compat.in_process_batching`), not over HTTP: a second, model-only service
behind `bentoml.depends` cost an HTTP round trip per request, and measured 75 against 130 req/s
at 32 concurrent /predict on 2 cores (README, "Why one service"). The service reads the feature
settings and normalisation statistics from the stored model's metadata, the mel filterbank from
the model's folder, and runs the model's LiteRT export (ser/runtime.py; SER_RUNTIME=keras runs
Keras): no TensorFlow and no librosa on the serving path. /predict and /timeline also take the
audio itself as the request body (ser/raw_upload.py, answered by the same `analyse` steps), and
SER_TTA_SPEEDS adds speed copies of each clip, averaged with it (ser.pipeline.clip_copies).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Annotated

import bentoml
import numpy as np
from pydantic import Field

from gradio_demo.mount import mount_demo
from ser.audio import AudioLimits, load_audio, probe
from ser.compat import (
    batch_wait_policy,
    cache_response_media_types,
    harden_uploads,
    in_process_batching,
    internal_api,
    reject_binary_form_fields,
    skip_unsampled_spans,
)
from ser.errors import BadRequestError, SERError
from ser.features import warm_up
from ser.memory import freeze_startup_objects, trim_heap_every
from ser.pipeline import Inputs, clip_copies, timeline_inputs
from ser.predictor import MAX_BATCH, clip_result, prepare
from ser.raw_upload import RawAudioMiddleware
from ser.raw_upload import document as document_raw_bodies
from ser.security import install_middlewares
from ser.settings import WORKER_ENVS, Settings
from ser.spec import ModelSpec, register_model_mel
from ser.timeline import timeline

reject_binary_form_fields()
harden_uploads()
skip_unsampled_spans()
cache_response_media_types()
SETTINGS = Settings.from_env()
HEAP_TRIM_S = 5.0  # How often each worker returns freed heap to the system (ser/memory.py).
MIN_TIMELINE_STEP_S = 0.25  # Shortest /timeline window and hop (shorter windows hold no input).

# SER_MAX_BATCH_SIZE=1 turns adaptive batching off: BentoML refuses max_batch_size=1 (ValueError at
# import, which `bentoml serve <bento tag>` reports as a confusing "Attribute ... not found").
BATCHING = (
    {"batchable": True, "max_batch_size": SETTINGS.max_batch_size, "max_latency_ms": SETTINGS.max_latency_ms}
    if SETTINGS.max_batch_size > 1
    else {"batchable": False}
)

BATCHED_INFER = in_process_batching("ser", "infer")  # `infer` through BentoML's batcher, in-process.
# SER_BATCH_WAIT none: a batch starts when the model is free; SER_BATCH_DISPATCH event: without polling.
batch_wait_policy("ser", SETTINGS.batch_wait, SETTINGS.batch_dispatch)
internal_api("ser", "infer")  # No HTTP route: one input of the wrong shape would fail its whole batch.

PREDICTIONS = bentoml.metrics.Counter(
    name="ser_predictions_total", documentation="Predictions answered, by emotion", labelnames=["emotion"]
)
PREPROCESS_SECONDS = bentoml.metrics.Histogram(
    name="ser_preprocessing_seconds",
    documentation="Decode + features per upload",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)


@mount_demo("/ui")  # The Gradio demo, calling this service in-process (gradio_demo/).
@bentoml.service(
    name="ser",
    workers=SETTINGS.workers,
    threads=1,  # `infer` runs in one thread per worker; long uploads are decoded in asyncio's pool.
    traffic={"timeout": SETTINGS.timeout_s, "max_concurrency": SETTINGS.max_concurrency},
    envs=WORKER_ENVS,
)
class SER:
    """Speech emotion recognition: POST audio (WAV, AIFF, FLAC, OGG/Vorbis, MP3)."""

    model_ref = bentoml.models.BentoModel(SETTINGS.model)

    def __init__(self) -> None:
        from ser.runtime import load_predictor

        self.spec = ModelSpec.from_metadata(dict(self.model_ref.info.metadata))
        register_model_mel(self.model_ref, self.spec)  # The stored mel filterbank: no librosa.
        warm_up(self.spec.features)  # Its caches (window, filterbank, DCT), before the first request.
        self.tag = str(self.model_ref.tag)
        # SER_RUNTIME: the LiteRT export (default, no TensorFlow) or the Keras model.
        self.predictor = load_predictor(self.model_ref, threads=SETTINGS.tf_threads)
        self.predictor.forward(np.zeros((1, *self.spec.features.input_shape), np.float32))  # Warm.
        self._model_lock = threading.Lock()
        trim_heap_every(HEAP_TRIM_S)
        freeze_startup_objects()  # Imports and model: never walked by a full collection again.
        self.ready = True
        _SERVING["instance"] = self  # Raw-body requests (ser/raw_upload.py) are answered by it.

    def __is_ready__(self) -> bool:
        return getattr(self, "ready", False)

    @bentoml.api(**BATCHING)
    def infer(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (n, labels) for prepared inputs (n, frames, features).

        Sync, so BentoML's batcher runs it in a thread while the event loop reads and decodes the
        next requests, which then meet in the next batch. Run on the loop instead (`async def`),
        a burst of 32 simultaneous /predict went through as 32 batches of one (7–8 batches here),
        though p50/p99 at 170 Poisson arrivals/s fell from 30–42/85–91 to 22/57–70 ms.
        """
        return self._forward(x)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self.predictor.forward(x.astype(np.float32, copy=False))

    # --- steps shared by the endpoints ---------------------------------------------------------
    def _prepare(self, path: Path | bytes, limits: AudioLimits, window_s: float = 0, hop_s: float = 0):
        """Decode + features in a worker thread; returns (prepared inputs, Inputs, duration).

        A clip's Inputs are a list: the recording, then its SER_TTA_SPEEDS copies (if any).
        """
        started = time.perf_counter()
        y = load_audio(path, limits)
        if window_s:
            inputs = timeline_inputs(y, self.spec.features, window_s=window_s, hop_s=hop_s)
            x = prepare(self.spec, inputs)
        else:
            inputs = clip_copies(y, self.spec.features, SETTINGS.tta_speeds)
            x = np.concatenate([prepare(self.spec, c) for c in inputs])
        PREPROCESS_SECONDS.observe(time.perf_counter() - started)
        return x, inputs, len(y) / self.spec.features.sample_rate

    async def _infer(self, x: np.ndarray) -> np.ndarray:
        """Model probabilities through the batchable method, in chunks it accepts."""
        step = SETTINGS.max_batch_size if BATCHING["batchable"] else MAX_BATCH
        chunks = [x[i : i + step] for i in range(0, len(x), step)]
        if len(chunks) == 1:  # Most requests: no task to schedule (a turn of a busy event loop).
            return np.asarray(await self._infer_chunk(x), np.float32)
        parts = await asyncio.gather(*(self._infer_chunk(c) for c in chunks))
        return np.concatenate([np.asarray(p, np.float32) for p in parts])

    async def _infer_chunk(self, x: np.ndarray) -> np.ndarray:
        if BATCHING["batchable"]:
            return await BATCHED_INFER(x)
        return await asyncio.to_thread(self._forward_one_at_a_time, x)

    def _forward_one_at_a_time(self, x: np.ndarray) -> np.ndarray:
        # Not `self.infer(x)`: on the served instance BentoML routes that through its client.
        with self._model_lock:  # An interpreter runs one call at a time (the batcher serialises too).
            return self._forward(x)

    def _clip_json(self, probs: np.ndarray, inputs: list[Inputs], duration: float) -> dict:
        pred = clip_result(self.spec, probs, inputs)
        pred.duration_s = round(duration, 3)
        PREDICTIONS.labels(emotion=pred.emotion).inc()
        return {**pred.to_dict(), "model": self.tag}

    # --- the endpoints' logic, also called in-process by the demo at /ui ----------------------
    def _decodes_inline(self, audio: Path | bytes, limits: AudioLimits) -> bool:
        """Whether ``audio`` is short enough to decode and featurise on the event loop.

        A thread per request cost more than the work for a clip of a few seconds: the hop to the
        pool and back and the GIL handed between the loop and the thread. Measured at 32 concurrent
        /predict on 2 cores (interleaved runs, 16 TESS clips): +10–20 % req/s and p99 at 32 clients
        ~120 against ~200 ms. A worker busy on the loop also leaves new connections to an idle one.
        Longer audio (SER_INLINE_DECODE_SAMPLES) still goes to a thread, so one upload cannot hold
        the loop for long. Reading the header here costs ~0.05 ms; a bad one is answered at once.
        """
        if not SETTINGS.inline_decode_samples:
            return False
        info = probe(audio, limits)
        return info.length_known and info.frames * info.channels <= SETTINGS.inline_decode_samples

    async def analyse(self, audio: Path | bytes) -> tuple[int, dict]:
        """One recording → (HTTP status, /predict's JSON body): the result, or an error dict."""
        limits = SETTINGS.predict_limits
        try:
            if self._decodes_inline(audio, limits):
                x, inputs, duration = self._prepare(audio, limits)
            else:
                x, inputs, duration = await asyncio.to_thread(self._prepare, audio, limits)
        except SERError as e:
            return e.http_status, e.to_dict()
        return 200, self._clip_json(await self._infer(x), inputs, duration)

    async def analyse_timeline(
        self, audio: Path | bytes, window_s: float = 2.0, hop_s: float = 1.0
    ) -> tuple[int, dict]:
        """A long recording → (HTTP status, /timeline's JSON body): the timeline, or an error dict."""
        try:
            # A floor on hop_s bounds the windows (and memory) per recording: 2,400 at 600 s.
            if not MIN_TIMELINE_STEP_S <= hop_s <= window_s <= self.spec.features.window_s:
                raise BadRequestError(
                    f"window_s={window_s:g} and hop_s={hop_s:g}: need {MIN_TIMELINE_STEP_S:g} ≤ hop_s ≤ "
                    f"window_s ≤ {self.spec.features.window_s:g} s"
                )
            x, inputs, duration = await asyncio.to_thread(
                self._prepare, audio, SETTINGS.timeline_limits, window_s, hop_s
            )
        except SERError as e:
            return e.http_status, e.to_dict()
        sr = self.spec.features.sample_rate
        result = timeline(inputs.spans, await self._infer(x), self.spec.labels, sr)
        return 200, {
            "duration_s": round(duration, 3),
            "speech_s": round(inputs.speech_samples / sr, 3),
            "window_s": window_s,
            "hop_s": hop_s,
            **result,
            "model": self.tag,
        }

    # --- endpoints -------------------------------------------------------------------------------
    @bentoml.api
    async def predict(self, audio: Path, ctx: bentoml.Context) -> dict:
        """One recording (≤ SER_MAX_DURATION_S) → emotion, confidence and all 7 probabilities."""
        status, body = await self.analyse(audio)
        ctx.response.status_code = status
        return body

    @bentoml.api
    async def predict_batch(self, audios: list[Path], ctx: bentoml.Context) -> dict:
        """Several recordings → one result per file, in order; a bad file gets its own error."""
        if not 1 <= len(audios) <= SETTINGS.max_batch_files:
            ctx.response.status_code = 400
            return BadRequestError(
                f"{len(audios)} files sent; send 1 to {SETTINGS.max_batch_files} in the field 'audios'"
            ).to_dict()

        async def one(path: Path):
            try:
                return await asyncio.to_thread(self._prepare, path, SETTINGS.predict_limits)
            except SERError as e:
                return e

        prepared = await asyncio.gather(*(one(p) for p in audios))
        good = [p for p in prepared if not isinstance(p, SERError)]
        probs = await self._infer(np.concatenate([x for x, _, _ in good])) if good else np.zeros((0, 0))
        results, start = [], 0
        for item in prepared:
            if isinstance(item, SERError):
                results.append(item.to_dict())
                continue
            x, inputs, duration = item
            results.append(self._clip_json(probs[start : start + len(x)], inputs, duration))
            start += len(x)
        return {"results": results, "model": self.tag}

    @bentoml.api
    async def timeline(
        self,
        audio: Path,
        ctx: bentoml.Context,
        window_s: Annotated[float, Field(ge=MIN_TIMELINE_STEP_S, le=10)] = 2.0,
        hop_s: Annotated[float, Field(ge=MIN_TIMELINE_STEP_S, le=10)] = 1.0,
    ) -> dict:
        """A long recording (≤ SER_MAX_TIMELINE_S) → emotion per window over the speech, and a summary."""
        status, body = await self.analyse_timeline(audio, window_s, hop_s)
        ctx.response.status_code = status
        return body


install_middlewares(SER, SETTINGS)  # CORS, API key (when configured) and the upload limit: ser/security.py.
_SERVING: dict[str, SER] = {}
NOT_READY = (503, {"error": "not_ready", "message": "the model is still loading; retry in a few seconds"})


async def _raw_predict(body: bytes, params: dict[str, float]) -> tuple[int, dict]:
    svc = _SERVING.get("instance")
    return await svc.analyse(body) if svc else NOT_READY


async def _raw_timeline(body: bytes, params: dict[str, float]) -> tuple[int, dict]:
    svc = _SERVING.get("instance")
    return await svc.analyse_timeline(body, **params) if svc else NOT_READY


# Innermost, after the security middlewares: the audio as the body, without a multipart form.
document_raw_bodies(
    {
        "/predict": "Or send the audio itself as the body: `Content-Type: audio/wav` (any `audio/*` or "
        "`application/octet-stream`; the content decides the format).",
        "/timeline": "Or send the audio itself as the body (`Content-Type: audio/*` or "
        "`application/octet-stream`) with `window_s` and `hop_s` as query parameters: "
        "`/timeline?window_s=2&hop_s=1`.",
    }
)
SER.add_asgi_middleware(
    RawAudioMiddleware,
    handlers={
        "/predict": (_raw_predict, frozenset()),
        "/timeline": (_raw_timeline, frozenset({"window_s", "hop_s"})),
    },
)
