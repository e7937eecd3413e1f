"""Configuration (SPEC §6): worker/settings.py reads DISPATCH_* and Sentry's own variables."""

from __future__ import annotations

import os
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from worker.settings import HttpPolicy, RetryPolicy, Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No DISPATCH_* or SENTRY_* variable of the machine running the tests leaks in."""
    for name in list(os.environ):
        if name.upper().startswith(("DISPATCH_", "SENTRY_")):
            monkeypatch.delenv(name)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


DEFAULTS: dict[str, Any] = {
    "redis_url": "redis://localhost:6379/0",
    "api_url": "https://api.stackone.com",
    "account_id": None,
    "callback_url": None,
    "callback_allowed_hosts": [],
    "rate_limit": "900/minute",
    "on_ambiguous": "retry",
    "retry_base_s": 1.0,
    "retry_cap_s": 600.0,
    "retry_max_attempts": 25,
    "retry_deadline_s": 86400.0,
    "callback_schedule_s": (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
    "callback_timeout_s": 15.0,
    "lease_s": 30.0,
    "retention_days": 30.0,
    "http_timeout_s": 75.0,
    "max_order_bytes": 256 * 1024,
    "sentry_dsn": None,
    "sentry_environment": None,
    "sentry_release": None,
}


@pytest.mark.parametrize(("field", "expected"), DEFAULTS.items(), ids=list(DEFAULTS))
def test_defaults_match_the_spec(field: str, expected: object) -> None:
    """Each setting's default is the one SPEC.md states."""
    assert getattr(settings(), field) == expected


def test_secrets_default_to_empty() -> None:
    """Secrets default to empty, and the retention is 30 days in seconds."""
    s = settings()
    assert s.api_key.get_secret_value() == ""
    assert s.callback_secret.get_secret_value() == ""
    assert s.retention_s == 30 * 86400


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ("DISPATCH_REDIS_URL", "redis_url", "redis://cache:6380/2"),
        ("DISPATCH_API_URL", "api_url", "https://api.test"),
        ("DISPATCH_ACCOUNT_ID", "account_id", "acct-1"),
        ("DISPATCH_RATE_LIMIT", "rate_limit", "10/second"),
        ("DISPATCH_ON_AMBIGUOUS", "on_ambiguous", "hold"),
        ("DISPATCH_RETRY_BASE_S", "retry_base_s", 0.1),
        ("DISPATCH_RETRY_CAP_S", "retry_cap_s", 1.0),
        ("DISPATCH_RETRY_MAX_ATTEMPTS", "retry_max_attempts", 3),
        ("DISPATCH_RETRY_DEADLINE_S", "retry_deadline_s", 60.0),
        ("DISPATCH_LEASE_S", "lease_s", 3.0),
        ("DISPATCH_RETENTION_DAYS", "retention_days", 7.0),
        ("DISPATCH_HTTP_TIMEOUT_S", "http_timeout_s", 3.0),
    ],
)
def test_environment_variables_are_read(
    monkeypatch: pytest.MonkeyPatch, env: str, field: str, expected: object
) -> None:
    """Each DISPATCH_* variable is read into its setting, typed."""
    monkeypatch.setenv(env, str(expected))
    assert getattr(settings(), field) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.example", ["a.example"]),
        ("a.example,b.example", ["a.example", "b.example"]),
        (" a.example , b.example ,, ", ["a.example", "b.example"]),
        ("", []),
    ],
)
def test_callback_allowed_hosts_from_csv(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[str]
) -> None:
    """DISPATCH_CALLBACK_ALLOWED_HOSTS is read as comma-separated hosts."""
    monkeypatch.setenv("DISPATCH_CALLBACK_ALLOWED_HOSTS", raw)
    assert settings().callback_allowed_hosts == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0,5,300", (0.0, 5.0, 300.0)),
        ("0, 0.05, 0.5 ,", (0.0, 0.05, 0.5)),
        (
            "0,5,300,1800,7200,18000,36000,36000",
            (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0),
        ),
    ],
)
def test_callback_schedule_from_csv(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: tuple[float, ...]
) -> None:
    """DISPATCH_CALLBACK_SCHEDULE_S is read as comma-separated seconds."""
    monkeypatch.setenv("DISPATCH_CALLBACK_SCHEDULE_S", raw)
    assert settings().callback_schedule_s == expected


def test_csv_values_work_as_keywords_too() -> None:
    """Comma-separated values work when given as keywords too."""
    s = settings(callback_allowed_hosts="x.example, y.example", callback_schedule_s="1,2")
    assert s.callback_allowed_hosts == ["x.example", "y.example"]
    assert s.callback_schedule_s == (1.0, 2.0)


@pytest.mark.parametrize("raw", ["0,-5", "0,nan", "0,inf"])
def test_callback_schedule_rejects_negative_or_non_finite_delays(raw: str) -> None:
    """A callback schedule with a negative or non-finite delay is refused."""
    with pytest.raises(ValidationError):
        settings(callback_schedule_s=raw)


def test_sentry_variables_are_read_without_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    """SENTRY_DSN, SENTRY_ENVIRONMENT and SENTRY_RELEASE are read without the prefix."""
    monkeypatch.setenv("SENTRY_DSN", "https://public@sentry.example/1")
    monkeypatch.setenv("SENTRY_ENVIRONMENT", "staging")
    monkeypatch.setenv("SENTRY_RELEASE", "order-dispatch@0.1.0")
    s = settings()
    assert isinstance(s.sentry_dsn, SecretStr)
    assert s.sentry_dsn.get_secret_value() == "https://public@sentry.example/1"
    assert s.sentry_environment == "staging"
    assert s.sentry_release == "order-dispatch@0.1.0"


SECRETS = {
    "api_key": "sk-live-0123456789abcdef",
    "callback_secret": "whsec_c2VjcmV0LXNpZ25pbmcta2V5",
    "sentry_dsn": "https://deadbeefcafe@sentry.example/42",
}


@pytest.fixture
def secret_settings() -> Settings:
    return settings(**SECRETS)


@pytest.mark.parametrize("field", SECRETS)
def test_secrets_are_secret_str(secret_settings: Settings, field: str) -> None:
    """Every secret setting is a SecretStr holding the value given."""
    value = getattr(secret_settings, field)
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == SECRETS[field]


@pytest.mark.parametrize(
    "render",
    [repr, str, lambda s: s.model_dump_json(), lambda s: str(s.model_dump())],
    ids=["repr", "str", "model_dump_json", "model_dump"],
)
def test_secrets_never_appear_when_printed(secret_settings: Settings, render: Any) -> None:
    """No secret appears when settings are printed, repr'd or dumped."""
    text = render(secret_settings)
    for secret in SECRETS.values():
        assert secret not in text
    assert "deadbeefcafe" not in text


def test_secrets_from_the_environment_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets read from the environment are kept and never shown."""
    monkeypatch.setenv("DISPATCH_API_KEY", SECRETS["api_key"])
    monkeypatch.setenv("DISPATCH_CALLBACK_SECRET", SECRETS["callback_secret"])
    monkeypatch.setenv("SENTRY_DSN", SECRETS["sentry_dsn"])
    s = settings()
    assert s.api_key.get_secret_value() == SECRETS["api_key"]
    for secret in SECRETS.values():
        assert secret not in repr(s)
        assert secret not in s.model_dump_json()


@pytest.mark.parametrize(
    "values",
    [
        {"on_ambiguous": "maybe"},
        {"api_url": "ftp://x"},
        {"api_url": "api.stackone.com"},
        {"callback_url": "ftp://hooks.example"},
        {"redis_url": "http://x"},
        {"redis_url": "localhost:6379"},
        {"retry_max_attempts": 0},
        {"retry_base_s": 0},
        {"retry_cap_s": -1},
        {"retry_deadline_s": 0},
        {"lease_s": 0},
        {"http_timeout_s": 0},
        {"retention_days": 0},
        {"log_format": "xml"},
    ],
    ids=lambda v: "=".join(map(str, next(iter(v.items())))),
)
def test_invalid_values_are_rejected(values: dict[str, Any]) -> None:
    """Out-of-range or malformed values are refused."""
    with pytest.raises(ValidationError):
        settings(**values)


@pytest.mark.parametrize(
    ("env", "value"), [("DISPATCH_ON_AMBIGUOUS", "maybe"), ("DISPATCH_RETRY_MAX_ATTEMPTS", "zero")]
)
def test_invalid_environment_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    """Out-of-range or malformed environment values are refused."""
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError):
        settings()


def test_empty_api_url_is_rejected() -> None:
    """An empty API URL is refused."""
    with pytest.raises(ValidationError):
        settings(api_url="")


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "rediss://:password@redis.example:6380/0?ssl_cert_reqs=required",
        "sentinel://sentinel-1:26379;sentinel://sentinel-2:26379",
        "unix:///run/redis.sock",
    ],
)
def test_redis_urls_accepted(url: str) -> None:
    """Every supported Redis URL form is accepted as given."""
    assert settings(redis_url=url).redis_url == url


def test_api_url_loses_its_trailing_slash() -> None:
    """The API URL's trailing slash is dropped."""
    assert settings(api_url="https://api.test/").api_url == "https://api.test"


def test_empty_callback_url_means_none() -> None:
    """An empty callback URL means none."""
    assert settings(callback_url="").callback_url is None


def test_unknown_keyword_is_rejected() -> None:
    """A misspelt keyword is refused, naming it."""
    with pytest.raises(ValidationError, match="api_kee"):
        settings(api_kee="x")


def test_settings_are_frozen() -> None:
    """Settings cannot be changed once made."""
    s = settings()
    with pytest.raises(ValidationError):
        s.rate_limit = "1/second"  # type: ignore[misc]


def test_retry_policy_carries_the_values() -> None:
    """The retry policy carries the retry settings given."""
    s = settings(retry_base_s=0.5, retry_cap_s=30, retry_max_attempts=7, retry_deadline_s=900)
    assert s.retry_policy() == RetryPolicy(base_s=0.5, cap_s=30.0, max_attempts=7, deadline_s=900.0)


def test_default_retry_policy() -> None:
    """The default retry policy is 1 s base, 600 s cap, 25 attempts within a day."""
    assert settings().retry_policy() == RetryPolicy(
        base_s=1.0, cap_s=600.0, max_attempts=25, deadline_s=86400.0
    )


@pytest.mark.parametrize(("timeout", "connect"), [(75.0, 10.0), (3.0, 3.0)])
def test_http_policy_carries_the_values(timeout: float, connect: float) -> None:
    """The HTTP policy carries the API URL and the timeout (connect capped at 10 s)."""
    s = settings(api_url="https://api.test/", http_timeout_s=timeout)
    assert s.http_policy() == HttpPolicy(
        api_url="https://api.test", timeout_s=timeout, connect_timeout_s=connect
    )
