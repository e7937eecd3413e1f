"""The exception tree: one root, split by what the worker must do next.

    DispatchError
    ├── ConfigurationError        settings that cannot work (exit 78)
    ├── ServiceUnavailable        Redis cannot be reached (exit 69)
    ├── InvalidOrder              an order fails the contract; carries field errors
    └── SubmitError               the outcome of one POST, classified at the HTTP boundary
        ├── RetryableError        nothing reached the API, or it asked us to come back:
        │                         connection not established, 408, 425, 429, 503
        ├── AmbiguousError        the request may have reached the API: read timeout,
        │                         connection lost after sending, 500, 502, 504
        └── PermanentError        retrying cannot help: 4xx, 501, an unparseable 2xx body

Only `worker.http` catches the HTTP libraries' errors: `http/stackone.py` turns every aiohttp
error into one of these, `raise ... from exc`, so an attempt needs one `except` per class;
`http/webhooks.py` turns httpx's into a `Delivery` value (a callback's outcome), never raising.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class DispatchError(Exception):
    """Root of every error order-dispatch raises on purpose."""


class ConfigurationError(DispatchError):
    """The settings cannot work as given."""


class ServiceUnavailable(DispatchError):
    """A service order-dispatch depends on (Redis) cannot be reached."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of an order, e.g. `candidate.emails.0.value`."""

    loc: str
    msg: str

    def as_dict(self) -> dict[str, str]:
        return {"loc": self.loc, "msg": self.msg}


class InvalidOrder(DispatchError):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.loc}: {e.msg}" for e in errors))


@dataclass
class SubmitError(DispatchError):
    """What one POST came to, when it did not place the order.

    `kind` is a short, low-cardinality name of the failure (`http_503`, `read_timeout`, ...),
    fit for a Sentry fingerprint or a metric label. `body` is already scrubbed and cut short.
    """

    kind: str
    http_status: int | None = None
    retry_after_s: float | None = None
    body: str = ""
    detail: str = field(default="")

    def __post_init__(self) -> None:
        Exception.__init__(self, self.describe())

    def describe(self) -> str:
        status = f" (HTTP {self.http_status})" if self.http_status else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.kind}{status}{detail}"

    def __str__(self) -> str:
        return self.describe()


class RetryableError(SubmitError):
    """Nothing was placed; try again after a delay."""


class AmbiguousError(SubmitError):
    """The order may have been placed; counted, and retried or held per policy."""


class PermanentError(SubmitError):
    """Retrying cannot help; the order goes to the dead letters."""
