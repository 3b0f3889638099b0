"""How a request reaches the model: the batcher's wait (SER_BATCH_WAIT) and where decoding runs
(SER_INLINE_DECODE_SAMPLES). Settings, BentoML's dispatcher with each wait, and the served answers."""

from __future__ import annotations

import asyncio
import io
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import soundfile as sf
from conftest import encode, tone
from helpers import serve


# --- settings --------------------------------------------------------------------------------------
def test_settings_defaults_and_values(monkeypatch):
    from ser.settings import Settings

    monkeypatch.delenv("SER_BATCH_WAIT", raising=False)
    monkeypatch.delenv("SER_INLINE_DECODE_SAMPLES", raising=False)
    settings = Settings.from_env()
    monkeypatch.delenv("SER_BATCH_DISPATCH", raising=False)
    settings = Settings.from_env()
    assert (settings.batch_wait, settings.batch_dispatch) == ("none", "event")
    assert settings.inline_decode_samples == 480_000
    monkeypatch.setenv("SER_BATCH_WAIT", " Learnt ")
    monkeypatch.setenv("SER_BATCH_DISPATCH", "POLL")
    monkeypatch.setenv("SER_INLINE_DECODE_SAMPLES", "0")
    settings = Settings.from_env()
    assert (settings.batch_wait, settings.batch_dispatch) == ("learnt", "poll")
    assert settings.inline_decode_samples == 0


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("SER_BATCH_WAIT", "short", r"SER_BATCH_WAIT='short'; allowed: none, learnt"),
        ("SER_BATCH_DISPATCH", "push", r"SER_BATCH_DISPATCH='push'; allowed: event, poll"),
        ("SER_INLINE_DECODE_SAMPLES", "-1", r"SER_INLINE_DECODE_SAMPLES='-1' must be ≥ 0"),
        ("SER_INLINE_DECODE_SAMPLES", "1e5", r"SER_INLINE_DECODE_SAMPLES='1e5' is not a valid int"),
        ("SER_MAX_BATCH_SIZE", "0", r"SER_MAX_BATCH_SIZE='0' must be positive"),
    ],
)
def test_settings_refuse_bad_values(monkeypatch, name, value, message):
    from ser.settings import Settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        Settings.from_env()


def test_batch_wait_policy_names_what_is_allowed():
    from ser.compat import batch_wait_policy

    with pytest.raises(ValueError, match="allowed: none, learnt"):
        batch_wait_policy("ser", "sometimes")
    with pytest.raises(ValueError, match="batch dispatch 'push'; allowed: event, poll"):
        batch_wait_policy("ser", "none", "push")


# --- BentoML's dispatcher with each wait -------------------------------------------------------------
def test_no_wait_optimizer_fits_the_cost_and_never_waits():
    from bentoml._internal.marshal.dispatcher import Optimizer

    from ser.compat import no_wait_optimizer

    theirs, ours = Optimizer(5.0), no_wait_optimizer(5.0)
    for opt in (theirs, ours):
        for n in (1, 2, 4, 8) * 10:  # Batches cost 2 ms + 0.5 ms per input; first inputs waited 40 ms.
            opt.log_outbound(n=n, wait=0.04, duration=0.002 + 0.0005 * n)
        opt.trigger_refresh()
    assert theirs.wait == pytest.approx(0.04)
    assert ours.wait == 0
    assert (ours.o_a, ours.o_b) == pytest.approx((theirs.o_a, theirs.o_b))
    assert (ours.o_a, ours.o_b) == pytest.approx((0.0005, 0.002), abs=1e-6)


def _lone_call_seconds(optimizer, held_s: float) -> tuple[float, list[int]]:
    """BentoML's CorkDispatcher after its start-up training: how long one request takes when the
    last 50 batches' first inputs had waited ``held_s`` (as after a burst), and the batch sizes."""
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    dispatcher = CorkDispatcher(
        max_latency_in_ms=60_000, max_batch_size=8, fallback=lambda: None, get_batch_size=len
    )
    if optimizer is not None:
        dispatcher.optimizer = optimizer
    sizes: list[int] = []

    async def model(batch):
        sizes.append(sum(len(x) for x in batch))
        return [[2 * v for v in x] for x in batch]

    async def main() -> float:
        call = dispatcher(model)
        for i in range(12):  # The dispatcher's start-up training dispatches these one by one.
            assert await call([i]) == [2 * i]
        for _ in range(50):
            dispatcher.optimizer.o_stat.append((4, 0.001, held_s))
        dispatcher.optimizer.trigger_refresh()
        started = time.perf_counter()
        assert await call([21]) == [42]
        took = time.perf_counter() - started
        results = await asyncio.gather(*(call([v]) for v in range(6)))  # Still answered one by one.
        assert results == [[2 * v] for v in range(6)]
        dispatcher.shutdown()
        return took

    return asyncio.run(main()), sizes


def test_a_lone_request_is_not_held_after_a_burst():
    """With SER_BATCH_WAIT=none a request on an idle model starts at once, whatever earlier batches
    waited; BentoML's learnt wait holds it for ~0.95 × that wait (here 2 s)."""
    from ser.compat import no_wait_optimizer

    ours, sizes = _lone_call_seconds(no_wait_optimizer(60.0), held_s=2.0)
    assert ours < 0.5
    assert sum(sizes) == 12 + 1 + 6
    theirs, _ = _lone_call_seconds(None, held_s=2.0)
    assert theirs > 1.0


def _dispatcher(max_latency_ms: int = 60_000, fallback=lambda: None):
    from bentoml._internal.marshal.dispatcher import CorkDispatcher

    from ser.batching import event_driven
    from ser.compat import no_wait_optimizer

    dispatcher = CorkDispatcher(
        max_latency_in_ms=max_latency_ms, max_batch_size=8, fallback=fallback, get_batch_size=len
    )
    dispatcher.optimizer = no_wait_optimizer(max_latency_ms / 1000)
    event_driven(dispatcher)
    return dispatcher


def test_event_driven_batches_what_queued_while_the_model_ran(monkeypatch):
    """SER_BATCH_WAIT=none: a batch starts when the model frees up, with every input that queued
    meanwhile (up to the batch limit), and nothing polls while the model runs."""
    import ser.batching

    checks = []
    ready = ser.batching._ready
    monkeypatch.setattr(ser.batching, "_ready", lambda d: checks.append(1) or ready(d))
    dispatcher = _dispatcher()
    sizes: list[int] = []

    async def model(batch):
        sizes.append(sum(len(x) for x in batch))
        await asyncio.sleep(0.2)
        return [[2 * v for v in x] for x in batch]

    async def main():
        call = dispatcher(model)
        first = asyncio.ensure_future(call([0]))
        await asyncio.sleep(0.05)  # The model is busy with the first input now.
        checks.clear()
        rest = [call([v]) for v in range(1, 11)]
        results = await asyncio.gather(first, *rest)
        dispatcher.shutdown()
        return results

    assert asyncio.run(main()) == [[2 * v] for v in range(11)]
    assert sizes == [1, 8, 2]  # Ten queued behind the first: a full batch of 8, then the last 2.
    # ~0.6 s of busy model: a wake per arrival and per finished batch, and a shedding check every
    # 50 ms. BentoML's own controller looks every 1 ms (~600 times).
    assert len(checks) < 60


def test_event_driven_sheds_an_input_that_waited_past_max_latency():
    dispatcher = _dispatcher(max_latency_ms=100, fallback=lambda: "shed")

    async def model(batch):
        await asyncio.sleep(0.4)
        return list(batch)

    async def main():
        call = dispatcher(model)
        for _ in range(12):  # Start-up: fit the cost model on quick batches first.
            dispatcher.optimizer.log_outbound(n=1, wait=0, duration=0.001)
        first = asyncio.ensure_future(call([1]))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        second = await call([2])  # Queued alone behind a model busy for 0.35 s more.
        waited = time.perf_counter() - started
        result = await first, second, waited
        dispatcher.shutdown()
        return result

    first, second, waited = asyncio.run(main())
    assert first == [1] and second == "shed"
    assert 0.1 <= waited < 0.3  # Shed after max_latency, while the model was still busy.


# --- served ---------------------------------------------------------------------------------------
def _wav(seconds: float, sr: int, channels: int = 1, f0: float = 190.0) -> bytes:
    y = tone(seconds, sr=sr, f0=f0)
    if channels > 1:
        y = np.stack([y] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.slow
def test_inline_and_threaded_decoding_answer_alike(trained_store, tmp_path):
    """The same answers, byte for byte, whether a clip is decoded on the event loop (short) or in a
    thread (longer than SER_INLINE_DECODE_SAMPLES, or with it 0), with either batch wait; bad
    input gets the same 4xx; concurrent requests each get their own answer."""
    short = encode(tone(1.5, sr=16_000, f0=230.0), sr=16_000)  # 24,000 samples: on the loop.
    long = _wav(12.0, 48_000, channels=2)  # 1,152,000 samples: in a thread.
    cases = {
        "short form": ("files", short),
        "short body": ("data", short),
        "long body": ("data", long),
        "junk body": ("data", b"RIFF" + b"\0" * 200),
        "empty body": ("data", b""),
        "too long": ("data", _wav(31.0, 8_000)),
    }

    def answers(url: str) -> dict:
        out = {}
        for name, (how, content) in cases.items():
            if how == "files":
                r = requests.post(f"{url}/predict", files={"audio": ("a.wav", content)}, timeout=60)
            else:
                r = requests.post(
                    f"{url}/predict", data=content, headers={"Content-Type": "audio/wav"}, timeout=60
                )
            out[name] = (r.status_code, r.json())
        return out

    with serve(trained_store, tmp_path / "default", SER_DEMO="0") as served:
        default = answers(served.url)
        clips = [encode(tone(1.0 + 0.2 * i, sr=16_000, f0=150.0 + 20 * i), sr=16_000) for i in range(12)]

        def post(c: bytes) -> dict:
            return requests.post(
                f"{served.url}/predict", data=c, headers={"Content-Type": "audio/wav"}, timeout=60
            ).json()

        alone = [post(c) for c in clips]
        with ThreadPoolExecutor(12) as pool:
            together = list(pool.map(post, clips))
        for a, b in zip(alone, together, strict=True):
            assert "probabilities" in a and "probabilities" in b, (a, b)
            assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-5)
            assert a["duration_s"] == b["duration_s"]
    with serve(
        trained_store,
        tmp_path / "threads",
        SER_DEMO="0",
        SER_INLINE_DECODE_SAMPLES="0",
        SER_BATCH_WAIT="learnt",
    ) as served:
        threaded = answers(served.url)

    assert [s for s, _ in default.values()] == [200, 200, 200, 415, 400, 413]
    for name in cases:
        status, body = default[name]
        assert threaded[name][0] == status, name
        if status == 200:
            assert body["probabilities"] == pytest.approx(threaded[name][1]["probabilities"], abs=1e-6), name
            assert {k: v for k, v in body.items() if k != "probabilities"} == {
                k: v for k, v in threaded[name][1].items() if k != "probabilities"
            }
        else:
            assert body == threaded[name][1], name
    assert default["long body"][1]["duration_s"] == 12.0
