"""The shop's HTTP contract: request bodies, the catalog, and JSON error responses.

Every client mistake becomes an ``ApiError`` (a 4xx with a JSON body ``{"error": {"code",
"message", "details"?}}``); handlers never let one turn into a 500. Bodies are parsed strictly:
integers must be JSON integers (not ``1.0`` or ``true``), unknown fields are refused, ``NaN``
and ``Infinity`` are not JSON, and every number and string has bounds so that nothing a client
sends can overflow SQLite's 64-bit integers or grow a row without limit.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, NoReturn, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (aiohttp ``client_max_size``); larger ones get 413."""

CONTENT_CODINGS = ("identity", "gzip", "deflate")
"""``Content-Encoding`` values a request body may have; others get 415."""

CATALOG_SIZE = 100_000
"""Items ``1..CATALOG_SIZE`` exist; others are 404 on /browse and 422 in an order."""

MAX_LINES = 100
MAX_QTY = 1_000
MAX_AMOUNT_CENTS = 10**13
ModelT = TypeVar("ModelT", bound=BaseModel)
SHADOW_HEADER = "X-Shadow-Traffic"
IDEMPOTENCY_HEADER = "Idempotency-Key"

Text = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=False)]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class OrderLineIn(_Body):
    """``{"item_id": 42, "qty": 2}``."""

    item_id: int = Field(ge=1, le=CATALOG_SIZE)
    qty: int = Field(ge=1, le=MAX_QTY)


class OrderIn(_Body):
    """Body of ``POST /order``; ``user_id`` may be a string or a non-negative integer."""

    user_id: Text | Annotated[int, Field(ge=0, le=2**63 - 1)]
    items: list[OrderLineIn] = Field(min_length=1, max_length=MAX_LINES)


class PayIn(_Body):
    """Body of ``POST /pay``: the order and its total in cents."""

    order_id: Text
    amount: int = Field(ge=0, le=MAX_AMOUNT_CENTS)


class ScaleIn(_Body):
    """Body of ``POST /admin/scale``."""

    service: Text
    instances: int = Field(ge=0, le=100_000)


class ApiError(Exception):
    """An error answer: HTTP ``status``, a stable machine ``code`` and a human message.

    4xx for client mistakes; the capacity emulation also uses it for its 503 and 504.
    """

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None,
        *, headers: dict[str, str] | None = None, close: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
        self.close = close
        """Close the connection after answering (the rest of the request cannot be trusted)."""

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        """The JSON response for this error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        response = json_response({"error": body}, self.status, headers or self.headers)
        if self.close:
            response.force_close()
        return response


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def http_error_response(exc: web.HTTPException) -> web.Response:
    """aiohttp's own error (unknown route, wrong method, body too large, unknown ``Expect``) as
    the shop's JSON error, with its headers (``Allow``, ...)."""
    headers = {k: v for k, v in exc.headers.items()
               if k.lower() not in ("content-type", "content-length")}
    code = exc.reason.lower().replace(" ", "_") or "http_error"
    message = f"{exc.reason}"
    if exc.status == 413:
        message = f"request body larger than {MAX_BODY_BYTES} bytes"
    elif exc.status == 404:
        message = "no such route"
    elif exc.text and exc.text != f"{exc.status}: {exc.reason}":
        message = exc.text
    return ApiError(exc.status, code, message).response(headers)


def price_cents(item_id: int) -> int:
    """The catalog price of ``item_id`` in cents: fixed, spread over 1.00 .. 999.99."""
    return 100 + (item_id * 2_654_435_761) % 99_900  # Knuth's multiplicative hash spreads ids


def product_page(item_id: int) -> dict[str, Any]:
    """The JSON product page of ``item_id``."""
    return {
        "item_id": item_id,
        "name": f"Item {item_id}",
        "price": price_cents(item_id),
        "currency": "CNY",
        "in_stock": True,
    }


def parse_item_id(text: str) -> int:
    """The ``{item_id}`` of a /browse path; 400 when not a decimal integer, 404 when absent."""
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise ApiError(400, "invalid_item_id", f"item id must be a positive integer, got {text!r}")
    item_id = int(text)
    if not 1 <= item_id <= CATALOG_SIZE:
        raise ApiError(404, "unknown_item", f"no item {item_id} (items are 1..{CATALOG_SIZE})")
    return item_id


def is_shadow(request: web.Request) -> bool:
    """Whether the request carries ``X-Shadow-Traffic: 1`` (``0`` or absent: real traffic).

    Any other value is refused: a test request with a mistyped tag must never land in the real
    tables.
    """
    value = request.headers.get(SHADOW_HEADER)
    if value is None or value.strip() in ("0", "false"):
        return False
    if value.strip() in ("1", "true"):
        return True
    raise ApiError(400, "invalid_shadow_header", f"{SHADOW_HEADER} must be 1 or 0, got {value!r}")


def idempotency_key(request: web.Request) -> str:
    """The ``Idempotency-Key`` header: 1-255 visible ASCII characters, required."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        raise ApiError(400, "missing_idempotency_key", f"{IDEMPOTENCY_HEADER} header is required")
    if not 1 <= len(key) <= 255 or not all(33 <= ord(c) <= 126 for c in key):
        raise ApiError(400, "invalid_idempotency_key",
                       f"{IDEMPOTENCY_HEADER} must be 1-255 visible ASCII characters")
    return key


async def read_body(request: web.Request, timeout_s: float) -> bytes:
    """The whole (decoded) request body, read within ``timeout_s`` seconds.

    415 for a ``Content-Encoding`` other than ``CONTENT_CODINGS``; 400 for a body that does
    not decode (``gzip`` that is not gzip) or breaks its framing; 408 when it is not complete
    in time; 413 (from aiohttp) when it exceeds ``MAX_BODY_BYTES`` decoded. Reading twice
    returns the same bytes.
    """
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in CONTENT_CODINGS:
        raise ApiError(415, "unsupported_content_encoding",
                       f"Content-Encoding {coding[:40]!r} is not supported",
                       headers={"Accept-Encoding": ", ".join(CONTENT_CODINGS)}, close=True)
    try:
        async with asyncio.timeout(timeout_s):
            return await request.read()
    except TimeoutError:
        raise ApiError(408, "body_timeout", f"request body not received within {timeout_s:g} s",
                       close=True) from None
    except RequestPayloadError as exc:
        if isinstance(exc.__cause__, ContentEncodingError):
            raise ApiError(400, "bad_content_encoding", f"request body is not valid {coding}",
                           close=True) from None
        raise ApiError(400, "malformed_body", f"request body is malformed: {exc}",
                       close=True) from None


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; 400 when it is empty or not JSON (413 comes from aiohttp)."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "empty_body", "expected a JSON object in the request body")
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ApiError(400, "malformed_json", f"request body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def validate(model: type[ModelT], data: Any) -> ModelT:
    """``data`` as ``model``; 422 listing every field problem otherwise."""
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_body", f"expected a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors(include_url=False, include_input=False)
        ]
        raise ApiError(422, "invalid_body", "request body does not match the schema",
                       details) from None
