"""Work-arounds for pinned third-party versions; each says which version needs it and why."""

from __future__ import annotations


def reject_binary_form_fields() -> None:
    """400, not 500, for a file sent under a field name the endpoint does not declare.

    BentoML 1.4.39 `json.loads` every multipart part that is not a declared file field; binary
    bytes (a WAV posted as `file` instead of `audio`) raise UnicodeDecodeError there, which it
    answers with 500. Re-raise it as the validation error any other unknown field gets.
    """
    from _bentoml_impl.serde import MultipartSerde
    from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError
    from starlette.datastructures import UploadFile

    parse = MultipartSerde.parse_request
    if getattr(parse, "_ser_patched", False):
        return

    async def parse_request(self, request, cls):
        try:
            return await parse(self, request, cls)
        except UnicodeDecodeError:
            form = await request.form()  # Starlette caches the parsed form on the request.
            wanted = ", ".join(cls.multipart_fields) or "none"
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "unexpected_file",
                        "a file was sent in the form field '{field}'; this endpoint takes files in: {wanted}",
                        {"field": k, "wanted": wanted},
                    ),
                    loc=(k,),
                    input=None,
                )
                for k, v in form.multi_items()
                if k not in cls.multipart_fields and isinstance(v, UploadFile)
            ]
            if not errors:
                raise
            raise ValidationError.from_exception_data(cls.__name__, errors) from None

    parse_request._ser_patched = True
    MultipartSerde.parse_request = parse_request


def harden_uploads() -> None:
    """Uploads are files sent as files: one per single-file field, saved under BentoML's own names.

    Three behaviours of BentoML 1.4.39's multipart handling (`_bentoml_impl.serde.MultipartSerde`,
    `_bentoml_sdk.validators.FileSchema`):

    - A *text* value in a file field is taken as a URL and downloaded by the server
      (`ensure_file`): private addresses are blocked, public ones are fetched with no size limit,
      and text that is not a URL fails with a 500. Now a 400: the service never fetches URLs.
    - Several files in a field that takes one: all but the first were silently dropped. Now a 400.
    - A body Starlette cannot parse as a form (no boundary, a text part over 1 MB, over 1000
      parts) raised a 400 `HTTPException` that BentoML answered with a 500. Now a 400.
    - Each file is saved as `NamedTemporaryFile(suffix=os.path.basename(filename))`: the client's
      file name reached the file system, and a name over 255 bytes failed with a 500. Now the
      name is dropped before saving (the service decodes by content and never needs it).
    """
    from typing import get_args

    from _bentoml_impl.serde import MultipartSerde
    from _bentoml_sdk.typing_utils import is_list_type, is_union_type
    from _bentoml_sdk.validators import FileSchema
    from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException

    if getattr(MultipartSerde.parse_request, "_ser_uploads", False):
        return

    def takes_many(cls, field: str) -> bool:
        annotation = cls.model_fields[field].annotation
        if is_union_type(annotation):
            annotation = get_args(annotation)[0]
        return is_list_type(annotation)

    def error(kind: str, message: str, field: str, **context) -> InitErrorDetails:
        return InitErrorDetails(
            type=PydanticCustomError(kind, message, {"field": field, **context}), loc=(field,), input=None
        )

    parse = MultipartSerde.parse_request

    async def parse_request(self, request, cls):
        try:
            form = await request.form()  # Starlette caches it: `parse` reads the same form.
        except HTTPException as e:  # A body Starlette cannot parse: BentoML answered 500.
            if e.status_code >= 500:
                raise
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    InitErrorDetails(
                        type=PydanticCustomError("malformed_form", "{reason}", {"reason": str(e.detail)}),
                        loc=(),
                        input=None,
                    )
                ],
            ) from None
        errors = []
        for field in cls.multipart_fields:
            values = form.getlist(field)
            if any(not isinstance(v, UploadFile) for v in values):
                errors.append(
                    error(
                        "not_a_file",
                        "the field '{field}' takes an uploaded file, not text (URLs are not fetched)",
                        field,
                    )
                )
            elif len(values) > 1 and not takes_many(cls, field):
                errors.append(
                    error(
                        "too_many_files",
                        "the field '{field}' takes one file; {n} were sent",
                        field,
                        n=len(values),
                    )
                )
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return await parse(self, request, cls)

    async def ensure_file(obj):
        if isinstance(obj, UploadFile):
            return obj
        raise ValueError("not an uploaded file")  # Never download (checked above already).

    decode = FileSchema.decode

    def decode_without_name(self, obj):
        if isinstance(obj, UploadFile) and obj.filename:
            obj = UploadFile(obj.file, size=obj.size, filename=None, headers=obj.headers)
        return decode(self, obj)

    parse_request._ser_uploads = True
    MultipartSerde.parse_request = parse_request
    MultipartSerde.ensure_file = staticmethod(ensure_file)
    FileSchema.decode = decode_without_name


_APP_FACTORIES: dict[str, object] = {}
_BATCH_WAITS: dict[str, tuple[str, str]] = {}  # Service name → (wait, dispatch) (`batch_wait_policy`).


def _record_app_factories() -> None:
    """Patch `ServiceAppFactory.create_instance` (once) to record each worker's factory and to give
    its batchers the wait policy `batch_wait_policy` chose; it runs in the worker, before any request."""
    from _bentoml_impl.server.app import ServiceAppFactory

    create = ServiceAppFactory.create_instance
    if getattr(create, "_ser_patched", False):
        return

    async def create_instance(self, app):
        name = self.service.name
        _APP_FACTORIES[name] = self
        wait, dispatch = _BATCH_WAITS.get(name, ("learnt", "poll"))
        if wait == "none":
            from ser.batching import event_driven

            for dispatcher in self.dispatchers.values():
                dispatcher.optimizer = no_wait_optimizer(dispatcher.max_latency)
                if dispatch == "event":
                    event_driven(dispatcher)
        return await create(self, app)

    create_instance._ser_patched = True
    ServiceAppFactory.create_instance = create_instance


def no_wait_optimizer(max_latency_s: float):
    """BentoML's batch-cost model (``o_a * n + o_b``, fitted as before) with its wait held at 0.

    `CorkDispatcher` starts a batch only when the model is free (one batch in flight), and then
    holds the queue while ``n * (wn + 1 ms + o_a) <= 0.95 * wait``, where ``wait`` is the mean time
    the last 50 batches' first inputs waited, refitted at most every 5 s. That wait feeds on
    itself: after a burst, when first inputs waited for a busy model, single requests are held for
    ~0.95 × that time, and the next fit sees those holds as waits. Measured on 2 cores (`python -m
    loadtests.loadgen`, interleaved, 16 TESS clips): right after 10 s at 32 concurrent clients a
    lone client's p50 was 14–34 ms with the learnt wait against 7–10 ms without, and its p50 before
    the burst 10 ms for both; throughput at 32 clients was the same. With the wait at 0 a batch
    starts as soon as the model is free, with everything queued by then: under load the model is
    busy and inputs still gather into batches (mean 6–13 at 32–64 clients); idle, nothing waits.
    """
    from bentoml._internal.marshal.dispatcher import Optimizer

    class NoWaitOptimizer(Optimizer):
        def trigger_refresh(self) -> None:
            super().trigger_refresh()
            self.wait = 0

    return NoWaitOptimizer(max_latency_s)


def batch_wait_policy(service_name: str, policy: str, dispatch: str = "event") -> None:
    """SER_BATCH_WAIT for ``service_name``'s batchable methods: ``none`` (`no_wait_optimizer`) or
    ``learnt`` (BentoML's own `CorkDispatcher` as it ships); with ``none``, SER_BATCH_DISPATCH
    ``event`` (`ser.batching.event_driven`) or ``poll`` (the dispatcher's own 1 ms loop)."""
    from ser.settings import BATCH_DISPATCHES, BATCH_WAITS

    if policy not in BATCH_WAITS:
        raise ValueError(f"batch wait policy {policy!r}; allowed: {', '.join(BATCH_WAITS)}")
    if dispatch not in BATCH_DISPATCHES:
        raise ValueError(f"batch dispatch {dispatch!r}; allowed: {', '.join(BATCH_DISPATCHES)}")
    _BATCH_WAITS[service_name] = (policy, dispatch)
    _record_app_factories()


def in_process_batching(service_name: str, method: str):
    """An awaitable ``f(x)`` that sends ``x`` through ``method``'s adaptive batcher, in-process.

    BentoML 1.4.39 batches a `batchable=True` API only for requests that arrive over HTTP (its
    `ServiceAppFactory.batch_infer`, one `CorkDispatcher` per method); a call from another method
    of the same service runs unbatched. This records each worker's app factory when it creates
    the service instance, and calls the factory's own `batch_infer`: the same dispatcher, the
    same `bentoml_service_adaptive_batch_size` metric, with no HTTP hop to a second process.
    """
    _record_app_factories()

    async def call(x):
        factory = _APP_FACTORIES.get(service_name)
        if factory is None:  # Not under `bentoml serve` (a test calling the class directly).
            raise RuntimeError(f"no BentoML server runs service {service_name!r} in this process")
        return await factory.batch_infer(method, (x,), {})

    return call


def skip_unsampled_spans() -> None:
    """Unsampled requests get OpenTelemetry's no-op span instead of a recorded one.

    BentoML 1.4.39 samples with `ParentBasedTraceIdRatio`, whose root sampler *records* every
    span it does not sample (`Decision.RECORD_ONLY`): with the default `tracing.sample_rate` of 0
    each request still builds a full span and cleans its attributes, 14 % of the serving
    process's Python time at 32 concurrent /predict (py-spy). The standard
    `ParentBased(TraceIdRatioBased(rate))` keeps sampled traces as they were and still gives every
    request its trace and span ids (the access log shows them); only unsampled spans are no-ops.
    """
    from bentoml._internal.utils import telemetry
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if getattr(telemetry.ParentBasedTraceIdRatio, "_ser_patched", False):
        return

    class ParentBasedTraceIdRatio(ParentBased):
        _ser_patched = True

        def __init__(self, rate: float):
            super().__init__(root=TraceIdRatioBased(rate))

    telemetry.ParentBasedTraceIdRatio = ParentBasedTraceIdRatio


def cache_response_media_types() -> None:
    """Compute each API output type's media type once, not per response.

    BentoML 1.4.39 rebuilds the output type's JSON schema (pydantic `TypeAdapter`) in
    `IOMixin.mime_type` for every response it sends: 4 % of the serving process's Python time
    at 32 concurrent /predict. The schema of a class never changes, so the answer is cached.
    """
    from _bentoml_sdk.io_models import IOMixin

    original = IOMixin.mime_type.__func__
    if getattr(original, "_ser_patched", False):
        return
    cache: dict[type, str] = {}

    def mime_type(cls) -> str:
        if cls not in cache:
            cache[cls] = original(cls)
        return cache[cls]

    mime_type._ser_patched = True
    IOMixin.mime_type = classmethod(mime_type)


_INTERNAL_APIS: dict[str, set[str]] = {}


def internal_api(service_name: str, method: str) -> None:
    """Serve ``method`` of ``service_name`` to in-process callers only: no HTTP route, not in /docs.json.

    The batchable model method exists for `in_process_batching`; over HTTP it would take any
    array, and one request of the wrong shape would fail the whole batch it joined (BentoML
    1.4.39 concatenates the batch before calling the method). Without a route, POST to its path
    answers 404 like any unknown path.
    """
    from _bentoml_impl.server.app import ServiceAppFactory
    from _bentoml_sdk.service import openapi

    _INTERNAL_APIS.setdefault(service_name, set()).add(method)
    routes = ServiceAppFactory.routes
    if getattr(routes.fget, "_ser_patched", False):
        return

    def filtered_routes(self):
        hidden = _INTERNAL_APIS.get(self.service.name, set())
        return [r for r in routes.fget(self) if getattr(r, "name", None) not in hidden]

    filtered_routes._ser_patched = True
    ServiceAppFactory.routes = property(filtered_routes)
    generate_spec = openapi.generate_spec

    def generate_public_spec(svc, **kwargs):
        spec = generate_spec(svc, **kwargs)
        for name in _INTERNAL_APIS.get(svc.name, set()):
            api = svc.apis[name]
            spec.paths.pop(api.route, None)
            for key in (*api.input_spec.openapi_components(name), *api.output_spec.openapi_components(name)):
                spec.components.get("schemas", {}).pop(key, None)
        return spec

    openapi.generate_spec = generate_public_spec
