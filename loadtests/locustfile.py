"""Locust load test of the ser service: a realistic mix of uploads, bad inputs and long recordings.

    make loadtest URL=http://127.0.0.1:3000 USERS=16 DURATION=30s         # CSV + HTML in reports/loadtest/
    locust -f loadtests/locustfile.py --headless -H http://127.0.0.1:3000 -u 16 -r 4 -t 30s \\
        --csv reports/loadtest/ser --html reports/loadtest/report.html
    SER_LOAD_SHAPE=step locust -f loadtests/locustfile.py -H http://127.0.0.1:3000   # web UI on :8089

Run locust as its own process (never import it into a process that has imported TensorFlow).

The mix, per user: /predict with clips of different lengths (TESS or synthetic, 1-10 s) as WAV,
FLAC, OGG/Vorbis and MP3, as multipart forms and as the request body itself; /predict_batch with
2-4 files; /timeline on a ~20 s recording; and bad inputs (junk bytes, silence, a 0.1 s clip)
whose expected 4xx JSON error counts as a success.

Environment:
  SER_LOAD_SHAPE          ramp | step | none (default none: -u/-r/-t as given)
                          ramp: users rise linearly to -u over the first 60 % of -t, then hold;
                          step: -u/4 more users every quarter of -t.
  SER_LOAD_MAX_FAIL_RATIO exit code 1 when the failure ratio is above it (default 0.01)
  SER_LOAD_P95_MS         exit code 1 when the 95th percentile of all requests is above it (default 5000)
  SER_LOAD_CLIPS          clips to load from the corpus (default 16)
  SER_API_KEY             sent as `Authorization: Bearer ...` when set
  SER_TESS_DIR            TESS copy to take clips from (default ../shared/data/tess; else synthetic)
"""

from __future__ import annotations

import json
import logging
import os
import random

from locust import FastHttpUser, LoadTestShape, between, events, task

from loadtests import clips as audio

SHAPE = os.environ.get("SER_LOAD_SHAPE", "none").lower()
MAX_FAIL_RATIO = float(os.environ.get("SER_LOAD_MAX_FAIL_RATIO", "0.01"))
P95_MS = float(os.environ.get("SER_LOAD_P95_MS", "5000"))
N_CLIPS = int(os.environ.get("SER_LOAD_CLIPS", "16"))
FORMATS = ("WAV", "FLAC", "OGG", "MP3")
log = logging.getLogger("ser.loadtest")


def _bodies() -> dict[str, list]:
    """Request bodies for every request kind, built once at start."""
    clips = audio.load_clips(N_CLIPS)
    singles = [(c, fmt) for i, c in enumerate(clips) for fmt in (FORMATS[i % 4], "WAV")]
    medium = [audio.join(clips[i : i + 3], 7.0) for i in range(0, min(len(clips), 9), 3)]
    files = [(f"{c.name}.{audio.SUFFIXES[fmt].lower()}", audio.encode(c, fmt)) for c, fmt in singles]
    files += [(f"{c.name}.flac", audio.encode(c, "FLAC")) for c in medium]
    long = audio.join(clips, 20.0)
    batches = [random.Random(i).sample(files[: 2 * len(clips)], k=2 + i % 3) for i in range(8)]
    return {
        "predict": [audio.multipart("audio", [f]) for f in files],
        "predict_body": [audio.raw_body(*f) for f in files],
        "batch": [(audio.multipart("audios", b), len(b)) for b in batches],
        "timeline": [audio.multipart("audio", [("long.ogg", audio.encode(long, "OGG"))])],
        "bad": [(audio.multipart("audio", [(n, d)]), s, e) for n, d, s, e in audio.bad_inputs()],
    }


BODIES = _bodies()


class SERUser(FastHttpUser):
    """One client of the service: mostly single predictions, some batches, timelines and mistakes."""

    wait_time = between(0.05, 0.5)
    network_timeout = 60.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        key = os.environ.get("SER_API_KEY")
        self.auth = {"Authorization": f"Bearer {key}"} if key else {}

    def _post(self, path: str, body: tuple[bytes, str], name: str, check) -> None:
        data, content_type = body
        headers = {**self.auth, "Content-Type": content_type}
        with self.client.post(path, data=data, headers=headers, name=name, catch_response=True) as r:
            try:
                problem = check(r)
            except (ValueError, KeyError, TypeError) as e:
                problem = f"unreadable answer ({type(e).__name__}: {e}): {r.text[:200] if r.text else ''}"
            if problem:
                r.failure(problem)
            else:
                r.success()

    @staticmethod
    def _ok(r) -> str | None:
        if r.status_code != 200:
            return f"HTTP {r.status_code}: {(r.text or '')[:200]}"
        return None

    @staticmethod
    def _has_emotion(r) -> str | None:
        return SERUser._ok(r) or (None if "emotion" in r.json() else "no emotion in the answer")

    @task(6)
    def predict(self) -> None:
        self._post("/predict", random.choice(BODIES["predict"]), "/predict", self._has_emotion)

    @task(4)
    def predict_body(self) -> None:
        """The audio as the body (`Content-Type: audio/...`), as a client with the file in hand sends it."""
        self._post("/predict", random.choice(BODIES["predict_body"]), "/predict [body]", self._has_emotion)

    @task(2)
    def predict_batch(self) -> None:
        body, n = random.choice(BODIES["batch"])

        def check(r):
            return self._ok(r) or (None if len(r.json()["results"]) == n else "wrong number of results")

        self._post("/predict_batch", body, "/predict_batch", check)

    @task(1)
    def timeline(self) -> None:
        def check(r):
            return self._ok(r) or (None if "summary" in r.json() else "no summary in the timeline")

        self._post("/timeline?window_s=2&hop_s=1", BODIES["timeline"][0], "/timeline", check)

    @task(1)
    def bad_input(self) -> None:
        body, status, code = random.choice(BODIES["bad"])

        def check(r):
            if r.status_code != status:
                return f"expected HTTP {status} {code}, got {r.status_code}: {(r.text or '')[:200]}"
            got = json.loads(r.text)
            return None if got.get("error") == code and got.get("message") else f"wrong error body {got}"

        self._post("/predict", body, f"/predict [bad: {code}]", check)


# --- load shapes: the unselected ones are abstract, so locust sees at most one ---------------------
if SHAPE not in ("ramp", "step", "none"):
    raise ValueError(f"SER_LOAD_SHAPE={SHAPE!r}; allowed: ramp, step, none")


class _Shape(LoadTestShape):
    """Reads -u (peak users) and -t (whole run) from the command line; defaults 16 users, 60 s."""

    use_common_options = True
    abstract = True

    def _params(self) -> tuple[int, float, float]:
        """(peak users, run time, seconds since start)."""
        opts = self.runner.environment.parsed_options if self.runner else None
        users = int(getattr(opts, "num_users", None) or 16)
        return users, float(getattr(opts, "run_time", None) or 60), self.get_run_time()


class RampShape(_Shape):
    """Users rise linearly to the peak over the first 60 % of the run, then hold."""

    abstract = SHAPE != "ramp"

    def tick(self):
        users, total, t = self._params()
        if t >= total:
            return None
        return max(1, round(users * min(1.0, t / (0.6 * total)))), max(1.0, users / 5)


class StepShape(_Shape):
    """A quarter of the peak users more at the start of each quarter of the run."""

    abstract = SHAPE != "step"

    def tick(self):
        users, total, t = self._params()
        if t >= total:
            return None
        return max(1, round(users * (int(4 * t / total) + 1) / 4)), float(users)


@events.quitting.add_listener
def check_thresholds(environment, **_kw) -> None:
    """Exit code 1 when the run broke a threshold (failure ratio, p95 of all requests)."""
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) or 0
    problems = []
    if total.num_requests == 0:
        problems.append("no requests were made")
    if total.fail_ratio > MAX_FAIL_RATIO:
        problems.append(f"failure ratio {total.fail_ratio:.2%} > {MAX_FAIL_RATIO:.2%}")
    if p95 > P95_MS:
        problems.append(f"p95 {p95:.0f} ms > {P95_MS:.0f} ms")
    if problems:
        log.error("thresholds broken: %s", "; ".join(problems))
        environment.process_exit_code = 1
    else:
        log.info("thresholds met: failure ratio %.2f%%, p95 %.0f ms", 100 * total.fail_ratio, p95)
