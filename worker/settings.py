"""The one place the environment is read.

`Settings()` is built once at each entry point (the CLI, the worker process, the bench) and passed
down; nothing reads `os.environ` at import time. Related knobs are handed out as small frozen
policies (`RetryPolicy`, `HttpPolicy`) so that pure functions take only what they use. Every
default is stated here once, in `Settings`: the policies have none of their own.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_CALLBACK_SCHEDULE_S = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try a failed POST again, and when to give up (`Settings.retry_policy`)."""

    base_s: float
    cap_s: float
    max_attempts: int
    deadline_s: float
    # Not a setting: a Retry-After longer than this is not believed (a proxy can send a year).
    retry_after_cap_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class HttpPolicy:
    """How the worker talks to the API (`Settings.http_policy`)."""

    api_url: str
    timeout_s: float
    connect_timeout_s: float


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _absolute_http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ValueError("must be an absolute http(s) URL")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Every `DISPATCH_*` variable (and Sentry's own three), typed and checked."""

    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        frozen=True,
        # Errors never echo what was given: it may be a secret.
        hide_input_in_errors=True,
    )

    redis_url: str = "redis://localhost:6379/0"
    # With sentinel:// URLs (several joined by ';'): the name of the monitored master.
    redis_sentinel_master: str = "mymaster"
    api_url: str = "https://api.stackone.com"
    api_key: SecretStr = SecretStr("")
    account_id: str | None = None

    callback_url: str | None = None
    callback_secret: SecretStr = SecretStr("")
    callback_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    callback_allow_private: bool = False
    callback_schedule_s: Annotated[
        tuple[Annotated[float, Field(ge=0, allow_inf_nan=False)], ...], NoDecode
    ] = DEFAULT_CALLBACK_SCHEDULE_S
    callback_timeout_s: float = Field(default=15.0, gt=0)

    rate_limit: str = "900/minute"
    rate_wait_max_s: float = Field(default=1.0, ge=0)
    circuit_threshold: int = Field(default=10, ge=1)
    circuit_cooldown_s: float = Field(default=30.0, gt=0)
    on_ambiguous: Literal["retry", "hold"] = "retry"
    retry_base_s: float = Field(default=1.0, gt=0)
    retry_cap_s: float = Field(default=600.0, gt=0)
    retry_max_attempts: int = Field(default=25, ge=1)
    retry_deadline_s: float = Field(default=86400.0, gt=0)

    lease_s: float = Field(default=30.0, gt=0)
    # A worker with work waiting that takes no message and finishes no attempt for this long
    # fails `order-dispatch health`; an event loop silent this long gives up its leases. Keep it
    # above DISPATCH_HTTP_TIMEOUT_S, or a slow but answering API reads as a stall.
    health_stall_s: float = Field(default=120.0, gt=0)
    retention_days: float = Field(default=30.0, gt=0)
    http_timeout_s: float = Field(default=75.0, gt=0)
    max_order_bytes: int = Field(default=256 * 1024, gt=0)
    stream_maxlen: int = Field(default=100_000, gt=0)
    queue: str = "order-dispatch"
    # Orders per queue message when a burst is enqueued (one message per order would cap the
    # producer and the worker at Celery's per-message cost).
    batch_max: int = Field(default=16, ge=1, le=500)
    # How many messages a burst is spread over at least, so that every worker process gets a
    # share (keep it at least the number of worker processes).
    batch_spread: int = Field(default=64, ge=1)
    worker_concurrency: int = Field(default=64, ge=1)
    log_format: Literal["json", "console"] = "json"

    sentry_dsn: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_DSN", "DISPATCH_SENTRY_DSN")
    )
    sentry_environment: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SENTRY_ENVIRONMENT", "DISPATCH_SENTRY_ENVIRONMENT"),
    )
    sentry_release: str | None = Field(
        default=None, validation_alias=AliasChoices("SENTRY_RELEASE", "DISPATCH_SENTRY_RELEASE")
    )

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_variables(cls, data: Any) -> Any:
        # pydantic-settings ignores environment variables it has no field for, so a typo such
        # as DISPATCH_RETRY_MAX_ATEMPTS would leave the default in force without a word.
        unknown = unknown_variables(os.environ, known_variables())
        if unknown:
            raise ValueError("; ".join(unknown))
        return data

    @field_validator("callback_allowed_hosts", mode="before")
    @classmethod
    def _hosts_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("callback_schedule_s", mode="before")
    @classmethod
    def _schedule_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _absolute_http_url(value)

    @field_validator("callback_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        return _absolute_http_url(value) if value else None

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from worker.flow import RateLimit

        # Only the text is checked here; raises ValueError saying what a rate limit looks like.
        RateLimit.parse(value, max_wait_s=0.0)
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://", "sentinel://")):
            raise ValueError("must start with redis://, rediss://, unix:// or sentinel://")
        return value

    @model_validator(mode="after")
    def _callback_needs_secret(self) -> Settings:
        secret = self.callback_secret.get_secret_value()
        if self.callback_url and not secret:
            raise ValueError("DISPATCH_CALLBACK_URL is set: DISPATCH_CALLBACK_SECRET is required")
        if secret:
            from worker.signing import secret_bytes

            secret_bytes(secret)  # raises ValueError (without the secret) when malformed
        return self

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_s=self.retry_base_s,
            cap_s=self.retry_cap_s,
            max_attempts=self.retry_max_attempts,
            deadline_s=self.retry_deadline_s,
        )

    def http_policy(self) -> HttpPolicy:
        return HttpPolicy(
            api_url=self.api_url,
            timeout_s=self.http_timeout_s,
            # Connecting takes 10 s at most, and never longer than the whole request.
            connect_timeout_s=min(10.0, self.http_timeout_s),
        )

    @property
    def retention_s(self) -> int:
        return int(self.retention_days * 86400)


PREFIX = "DISPATCH_"
EX_CONFIG = 78  # sysexits: configuration error, for every entry point


def known_variables() -> set[str]:
    """Every environment variable `Settings` reads (with its prefix, or its alias)."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(PREFIX + field_name.upper())
    return names


def unknown_variables(environ: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """Pure: one message per `DISPATCH_*` variable in `environ` that is not a setting, naming
    the closest known one."""
    known = sorted(k for k in known if k.startswith(PREFIX))
    messages = []
    for name in sorted(n for n in environ if n.upper().startswith(PREFIX)):
        if name.upper() in known:
            continue
        # Compared without the prefix that every name shares.
        suffixes = [k.removeprefix(PREFIX) for k in known]
        close = difflib.get_close_matches(name.upper().removeprefix(PREFIX), suffixes, n=1)
        hint = f" (did you mean {PREFIX}{close[0]}?)" if close else ""
        messages.append(f"unknown variable {name}{hint}")
    return messages


def describe_errors(exc: ValidationError) -> list[str]:
    """One line per configuration error, naming the variable and never echoing its value."""
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        msg = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            lines.append(PREFIX + "_".join(str(p) for p in error["loc"]).upper() + f": {msg}")
        else:
            lines.extend(part for part in msg.split("; "))
    return lines
