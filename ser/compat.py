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
