"""The demo's one UI: `build_demo(backend)` → a `gr.Blocks`, mounted at /ui or launched standalone.

Upload a file or record from the microphone; the page shows the predicted emotion and all seven
probabilities, the waveform and spectrogram of what was analysed, and for recordings longer than
`TIMELINE_MIN_S` the emotion timeline. Refused input shows the service's message, never a trace.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from gradio_demo.backends import Backend
from gradio_demo.examples import all_examples, pretty
from gradio_demo.plots import signal_figure, timeline_figure

logger = logging.getLogger(__name__)

TITLE = "ser — speech emotion recognition"
TIMELINE_MIN_S = 6.0  # Longer recordings also get the timeline.
CSS = """
#ser-status { min-height: 3.2em; }
#ser-status.error, #ser-status .error { color: var(--error-text-color); }
"""
INTRO = (
    f"# {TITLE}\n"
    "Upload a recording (WAV, FLAC, OGG, MP3, AIFF) or record one, and see which of seven emotions "
    "it sounds like. Recordings longer than 6 s also get an emotion timeline."
)
HINT = "Upload a file, record from the microphone, or click an example."


def theme() -> gr.themes.Base:
    """The demo's theme (local fonts only: the page must load without internet)."""
    return gr.themes.Default(primary_hue="indigo", secondary_hue="slate")


def launch_kwargs() -> dict[str, Any]:
    """What Gradio 6 takes at launch (or mount) rather than in `gr.Blocks`."""
    return {"theme": theme(), "css": CSS}


async def _call(fn: Callable[[str], Any], path: str) -> dict:
    """A backend method, awaited if async, else run in a thread (never blocking the event loop)."""
    if inspect.iscoroutinefunction(fn):
        return await fn(path)
    return await asyncio.to_thread(fn, path)


def _is_error(body: Any) -> bool:
    return not isinstance(body, dict) or "error" in body


def _error_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return "the service gave no answer"


def _outputs(status: str, label=None, signal=None, timeline=None):
    return (
        status,
        label,
        signal,
        gr.Plot(value=timeline, visible=timeline is not None),
    )


def _refused(body: Any):
    message = _error_text(body)
    code = body.get("error", "error") if isinstance(body, dict) else "error"
    gr.Warning(f"Could not analyse this recording: {message}")
    return _outputs(f"**Could not analyse this recording:** {message} (`{code}`)")


def _signal_or_none(path: str):
    try:
        return signal_figure(path)
    except Exception:  # The service accepted the file; a plot must not turn that into a failure.
        logger.exception("demo: could not plot %s", path)
        return None


def make_analyse(backend: Backend) -> Callable:
    """The event handler: a clip path in, (status, label, signal plot, timeline plot) out."""

    async def analyse(path: str | None):
        if not path:
            gr.Warning(HINT)
            return _outputs(HINT)
        try:
            result = await _call(backend.predict, path)
            timeline = None
            if _is_error(result) and result.get("error") == "audio_too_long":
                # Too long for one prediction: the timeline covers the whole recording instead.
                timeline = await _call(backend.timeline, path)
                if _is_error(timeline):
                    return _refused(timeline)
                label = {pretty(k): v for k, v in timeline["summary"].items()}
                top = max(timeline["summary"], key=timeline["summary"].get)
                status = (
                    f"**{pretty(top)}** most of the time ({timeline['summary'][top]:.0%} of "
                    f"{timeline['speech_s']:.1f} s of speech) · {timeline['duration_s']:.1f} s recording, "
                    f"too long for one prediction: shares of the speech time by emotion · "
                    f"model `{timeline.get('model', '?')}`"
                )
            elif _is_error(result):
                return _refused(result)
            else:
                label = {pretty(k): v for k, v in result["probabilities"].items()}
                status = (
                    f"**{pretty(result['emotion'])}** with {result['confidence']:.0%} confidence · "
                    f"{result['duration_s']:.1f} s analysed · model `{result.get('model', '?')}`"
                )
                if result["duration_s"] > TIMELINE_MIN_S:
                    timeline = await _call(backend.timeline, path)
                    if _is_error(timeline):
                        status += f"\n\nNo timeline: {_error_text(timeline)}"
                        timeline = None
            signal = await asyncio.to_thread(_signal_or_none, path)
            figure = await asyncio.to_thread(timeline_figure, timeline) if timeline else None
        except Exception:
            logger.exception("demo: analysing %s failed", path)
            gr.Warning("The service failed to analyse this recording; try again or another file.")
            return _outputs("**The service failed to analyse this recording.** Try again, or another file.")
        return _outputs(status, label, signal, figure)

    return analyse


def build_demo(backend: Backend, examples: list[tuple[str, str]] | None = None) -> gr.Blocks:
    """The UI over ``backend``. ``examples``: (path, label) pairs; default synthetic (+ TESS if present)."""
    examples = all_examples() if examples is None else examples
    analyse = make_analyse(backend)
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        # The figures carry their own titles (the plots' corner labels would cover them). Created
        # first, placed last: the examples beside the input need them as outputs.
        signal = gr.Plot(
            label="Waveform and spectrogram", show_label=False, elem_id="ser-signal", render=False
        )
        timeline = gr.Plot(
            label="Emotion timeline", show_label=False, visible=False, elem_id="ser-timeline", render=False
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=5):
                audio = gr.Audio(
                    sources=["upload", "microphone"],
                    type="filepath",
                    label="Recording",
                    elem_id="ser-audio",
                )
                button = gr.Button("Analyse", variant="primary", elem_id="ser-analyse")
                examples_slot = gr.Column()
            with gr.Column(scale=6):
                status = gr.Markdown(HINT, elem_id="ser-status")
                label = gr.Label(num_top_classes=7, label="Emotion and probabilities", elem_id="ser-label")
        signal.render()
        timeline.render()
        outputs = [status, label, signal, timeline]
        if examples:
            with examples_slot:
                gr.Examples(
                    examples=[[path] for path, _ in examples],
                    example_labels=[name for _, name in examples],
                    inputs=[audio],
                    outputs=outputs,
                    fn=analyse,
                    run_on_click=True,
                    cache_examples=False,
                    examples_per_page=len(examples),
                    label="Examples (one click)",
                    api_visibility="private",
                )
        button.click(analyse, inputs=audio, outputs=outputs, api_name="analyse")
        audio.upload(analyse, inputs=audio, outputs=outputs, api_visibility="private")
        audio.stop_recording(analyse, inputs=audio, outputs=outputs, api_visibility="private")
    return demo
