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


def keep_serving_after_sigterm(grace_s: float) -> None:
    """Pass SIGTERM on to the server's own handler only after ``grace_s`` seconds.

    On SIGTERM BentoML's arbiter stops every service process at once. The entry service then
    finishes its in-flight requests, but those need the model service, which would already be
    gone: they failed with 500. Called in the model service's process (after uvicorn installed
    its handler), this keeps the model answering while the entry drains; the process still
    exits well within a platform's usual 10 s grace period.
    """
    import signal
    import threading

    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        return

    def delayed(signum, frame):
        threading.Timer(grace_s, previous, args=(signum, frame)).start()

    signal.signal(signal.SIGTERM, delayed)
