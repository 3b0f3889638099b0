"""The BentoML 1.4.39 work-arounds in ser/compat.py keep what they promise (no server needed)."""

from __future__ import annotations

import pytest


def test_unsampled_spans_are_not_recorded_but_keep_their_ids():
    from bentoml._internal.utils import telemetry
    from opentelemetry.sdk.trace import TracerProvider

    from ser.compat import skip_unsampled_spans

    skip_unsampled_spans()
    skip_unsampled_spans()  # Idempotent.
    unsampled = TracerProvider(sampler=telemetry.ParentBasedTraceIdRatio(0.0)).get_tracer("t")
    span = unsampled.start_span("request")
    assert not span.is_recording()
    assert span.get_span_context().trace_id and span.get_span_context().span_id  # Still in the logs.
    sampled = TracerProvider(sampler=telemetry.ParentBasedTraceIdRatio(1.0)).get_tracer("t")
    assert sampled.start_span("request").is_recording()


@pytest.mark.parametrize("typ", [dict, str, bytes, list])
def test_cached_media_types_match_bentoml(typ):
    from _bentoml_sdk.io_models import IOMixin, ensure_io_descriptor

    from ser.compat import cache_response_media_types

    descriptor = ensure_io_descriptor(typ)
    expected = descriptor.mime_type()
    original = IOMixin.__dict__["mime_type"]
    cache_response_media_types()
    try:
        assert descriptor.mime_type() == expected
        assert descriptor.mime_type() == expected  # From the cache.
    finally:
        IOMixin.mime_type = original


def test_in_process_batching_outside_a_server_says_so():
    import asyncio

    from ser.compat import in_process_batching

    call = in_process_batching("no_such_service", "infer")
    with pytest.raises(RuntimeError, match="no BentoML server runs service 'no_such_service'"):
        asyncio.run(call([1]))
