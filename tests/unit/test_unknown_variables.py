"""Unknown `DISPATCH_*` variables are a configuration error that names them (SPEC §6)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from worker.settings import Settings, describe_errors, known_variables, unknown_variables


def test_every_setting_is_a_known_variable() -> None:
    """Each field is known by its prefixed name, and Sentry's by their own aliases."""
    known = known_variables()
    assert "DISPATCH_RETRY_MAX_ATTEMPTS" in known
    assert {"SENTRY_DSN", "DISPATCH_SENTRY_DSN"} <= known
    assert len(known) >= len(Settings.model_fields)


def test_a_typo_is_named_with_the_closest_known_name() -> None:
    """A misspelt variable is reported with the name it was probably meant to be."""
    messages = unknown_variables({"DISPATCH_RETRY_MAX_ATEMPTS": "3"}, known_variables())
    assert messages == [
        "unknown variable DISPATCH_RETRY_MAX_ATEMPTS (did you mean DISPATCH_RETRY_MAX_ATTEMPTS?)"
    ]


def test_a_name_like_no_setting_is_named_without_a_guess() -> None:
    """An unknown name far from every setting is reported without a suggestion."""
    messages = unknown_variables({"DISPATCH_QWXZQ_VVK": "1"}, known_variables())
    assert messages == ["unknown variable DISPATCH_QWXZQ_VVK"]


def test_other_variables_are_not_ours_to_judge() -> None:
    """Only the DISPATCH_ prefix is checked: PATH, SENTRY_* and the like pass."""
    environ = {"PATH": "/bin", "SENTRY_DSN": "", "DISPATCH_LEASE_S": "3", "DISPATCHER": "x"}
    assert unknown_variables(environ, known_variables()) == []


def test_settings_refuse_an_unknown_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building Settings fails (it would otherwise keep the default of 25 attempts)."""
    monkeypatch.setenv("DISPATCH_RETRY_MAX_ATEMPTS", "3")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_errors(caught.value) == [
        "unknown variable DISPATCH_RETRY_MAX_ATEMPTS (did you mean DISPATCH_RETRY_MAX_ATTEMPTS?)"
    ]


def test_described_errors_name_the_variable_and_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value is reported by its variable's name; the value itself never appears."""
    monkeypatch.setenv("DISPATCH_LEASE_S", "-s3cr3t")
    with pytest.raises(ValidationError) as caught:
        Settings()
    lines = describe_errors(caught.value)
    assert lines and lines[0].startswith("DISPATCH_LEASE_S: ")
    assert "s3cr3t" not in " ".join(lines)
