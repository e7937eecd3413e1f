"""The order contract (SPEC §2, §3): worker/orders.py against StackOne's reference spec."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from producer.samples import sample_texts
from worker.errors import FieldError, InvalidOrder
from worker.identity import check_account_id, order_key, split_key
from worker.orders import (
    APPLICATION_STATUSES,
    ApplicationStatus,
    CandidateEmail,
    HiringTeamMember,
    Order,
    OrderApplication,
    OrderCandidate,
    OrderJob,
    OrderPackage,
    OrderResult,
    StrictApplication,
    StrictApplicationStatus,
    StrictCandidate,
    StrictCandidateEmail,
    StrictHiringTeamMember,
    StrictJob,
    StrictPackage,
    UpstreamOrder,
)
from worker.validation import parse_order

MAX_BYTES = 262144

# ../shared/reference/example-order.json: StackOne's "Order Assessments Request" example.
EXAMPLE_ORDER: dict[str, Any] = {
    "id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
    "package": {
        "id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "remote_id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "name": "Test 1",
        "description": "Skills test to gauge a candidate's proficiency in job-specific skills",
    },
    "application": {
        "id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "remote_id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "application_status": {"value": "hired", "source_value": "Hired"},
        "passthrough": {"other_known_names": "John Doe"},
    },
    "job": {
        "id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "remote_id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "title": "Software Engineer",
        "hiring_team": [
            {
                "user_id": "123456",
                "remote_user_id": "e3cb75bf-aa84-466e-a6c1-b8322b257a48",
                "first_name": "John",
                "last_name": "Doe",
                "email": "john.doe@gmail.com",
                "role": "Software Engineer",
            }
        ],
        "passthrough": {"other_known_names": "John Doe"},
    },
    "candidate": {
        "id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "remote_id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
        "first_name": "Romain",
        "last_name": "Sestier",
        "emails": [{"type": "personal", "value": "sestier.romain123@gmail.com"}],
        "passthrough": {"other_known_names": "John Doe"},
        "profile_url": "https://exmaple.com/candidate?id=xyz",
    },
    "requester": {
        "user_id": "123456",
        "remote_user_id": "e3cb75bf-aa84-466e-a6c1-b8322b257a48",
        "first_name": "John",
        "last_name": "Doe",
        "email": "john.doe@gmail.com",
        "role": "Software Engineer",
    },
    "results_update_url": "https://exmaple.com/integrations/results/update",
    "passthrough": {"other_known_names": "John Doe"},
}

# ../shared/reference/example-response.json
EXAMPLE_RESPONSE = {
    "id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
    "remote_id": "8187e5da-dc77-475e-9949-af0f1fa4e4e3",
    "test_url": "https://exmaple.com/integrations/candidate/test",
}

# The `properties` of each schema in ../shared/reference/stackone-ats-assessments.openapi.json.
SCHEMA_PROPERTIES: dict[str, set[str]] = {
    "AtsCreateCandidatesAssessmentsRequestDto": {
        "id",
        "package",
        "application",
        "job",
        "candidate",
        "requester",
        "results_update_url",
        "passthrough",
    },
    "OrderPackageApiModel": {"id", "remote_id", "name", "description"},
    "OrderApplicationApiModel": {"id", "remote_id", "application_status", "passthrough"},
    "ApplicationStatusEnum": {"value", "source_value"},
    "OrderJobApiModel": {"id", "remote_id", "title", "hiring_team", "passthrough"},
    "OrderJobHiringTeamApiModel": {
        "user_id",
        "remote_user_id",
        "first_name",
        "last_name",
        "email",
        "role",
    },
    "AtsJobHiringTeam": {"user_id", "remote_user_id", "first_name", "last_name", "email", "role"},
    "OrderCandidateApiModel": {
        "id",
        "remote_id",
        "first_name",
        "last_name",
        "emails",
        "passthrough",
        "profile_url",
    },
    "CandidateEmail": {"type", "value"},
    "CreateAssessmentOrderResult": {"id", "remote_id", "test_url"},
}

# ApplicationStatusEnum.value.enum, in the spec's order (its trailing null is `value: null`).
APPLICATION_STATUS_ENUM = (
    "active",
    "assessment",
    "background_check",
    "converted",
    "declined_by_candidate",
    "hired",
    "interview",
    "lead",
    "offer",
    "reference_check",
    "rejected",
    "review",
    "screen",
    "new",
    "onboarding",
    "created",
    "accepted",
    "short_list",
    "approved",
    "unmapped_value",
)

MODELS_BY_SCHEMA: list[tuple[type[BaseModel], str]] = [
    (UpstreamOrder, "AtsCreateCandidatesAssessmentsRequestDto"),
    (Order, "AtsCreateCandidatesAssessmentsRequestDto"),
    (OrderPackage, "OrderPackageApiModel"),
    (StrictPackage, "OrderPackageApiModel"),
    (OrderApplication, "OrderApplicationApiModel"),
    (StrictApplication, "OrderApplicationApiModel"),
    (ApplicationStatus, "ApplicationStatusEnum"),
    (StrictApplicationStatus, "ApplicationStatusEnum"),
    (OrderJob, "OrderJobApiModel"),
    (StrictJob, "OrderJobApiModel"),
    (HiringTeamMember, "OrderJobHiringTeamApiModel"),
    (HiringTeamMember, "AtsJobHiringTeam"),
    (StrictHiringTeamMember, "OrderJobHiringTeamApiModel"),
    (StrictHiringTeamMember, "AtsJobHiringTeam"),
    (OrderCandidate, "OrderCandidateApiModel"),
    (StrictCandidate, "OrderCandidateApiModel"),
    (CandidateEmail, "CandidateEmail"),
    (StrictCandidateEmail, "CandidateEmail"),
    (OrderResult, "CreateAssessmentOrderResult"),
]


def example() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE_ORDER)


_DELETE = object()


def changed(path: str, value: object) -> dict[str, Any]:
    """The example order with the dotted `path` set to `value` (or removed with _DELETE)."""
    order = example()
    *parents, last = path.split(".")
    node: Any = order
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return order


def invalid(raw: str | bytes | dict[str, Any], max_bytes: int = MAX_BYTES) -> list[FieldError]:
    with pytest.raises(InvalidOrder) as info:
        parse_order(raw, max_bytes=max_bytes)
    assert info.value.errors, "InvalidOrder without field errors"
    assert all(isinstance(e, FieldError) for e in info.value.errors)
    return info.value.errors


# --- the example and the samples ------------------------------------------------------------------


def test_example_order_validates_and_round_trips() -> None:
    """StackOne's example order validates and its body comes out unchanged."""
    order, body = parse_order(example(), max_bytes=MAX_BYTES)
    assert isinstance(order, Order)
    assert isinstance(body, str)
    assert json.loads(body) == EXAMPLE_ORDER


@pytest.mark.parametrize(
    "encode", [json.dumps, lambda d: json.dumps(d).encode()], ids=["str", "bytes"]
)
def test_example_order_validates_from_json_text(encode: Any) -> None:
    """The example order validates from JSON text too, body unchanged."""
    _, body = parse_order(encode(EXAMPLE_ORDER), max_bytes=MAX_BYTES)
    assert json.loads(body) == EXAMPLE_ORDER


def test_sample_orders_all_validate_and_first_is_the_example() -> None:
    """Every shipped sample order validates unchanged, and the first is StackOne's example."""
    lines = sample_texts()
    assert lines
    for number, line in enumerate(lines, start=1):
        _, body = parse_order(line, max_bytes=MAX_BYTES)
        assert json.loads(body) == json.loads(line), f"line {number} changed on the way through"
    assert json.loads(lines[0]) == EXAMPLE_ORDER


# --- field for field with the reference spec ------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "schema"), MODELS_BY_SCHEMA, ids=[f"{m.__name__}-{s}" for m, s in MODELS_BY_SCHEMA]
)
def test_model_fields_are_the_schema_properties(model: type[BaseModel], schema: str) -> None:
    """Each model's fields are exactly its schema's properties."""
    assert set(model.model_fields) == SCHEMA_PROPERTIES[schema]


@pytest.mark.parametrize(
    ("strict", "upstream"),
    [
        (Order, UpstreamOrder),
        (StrictPackage, OrderPackage),
        (StrictApplication, OrderApplication),
        (StrictApplicationStatus, ApplicationStatus),
        (StrictJob, OrderJob),
        (StrictHiringTeamMember, HiringTeamMember),
        (StrictCandidate, OrderCandidate),
        (StrictCandidateEmail, CandidateEmail),
    ],
)
def test_strict_models_narrow_the_upstream_ones(
    strict: type[BaseModel], upstream: type[BaseModel]
) -> None:
    """The strict models (what a producer may send) narrow the lenient upstream ones."""
    assert issubclass(strict, upstream)
    assert strict.model_config.get("extra") == "forbid"
    assert upstream.model_config.get("extra") == "ignore"


def test_application_statuses_are_the_documented_enum() -> None:
    """The application statuses are exactly the documented enum."""
    assert APPLICATION_STATUSES == APPLICATION_STATUS_ENUM


@pytest.mark.parametrize("status", APPLICATION_STATUS_ENUM)
def test_every_documented_application_status_is_accepted(status: str) -> None:
    """Every documented application status is accepted."""
    raw = changed("application.application_status.value", status)
    order, _ = parse_order(raw, max_bytes=MAX_BYTES)
    assert order.application.application_status is not None
    assert order.application.application_status.value == status


def test_upstream_models_are_lenient() -> None:
    """The upstream models ignore unknown fields and accept statuses not yet documented."""
    parsed = UpstreamOrder.model_validate(
        {"colour": "red", "application": {"application_status": {"value": "some_future_status"}}}
    )
    assert parsed.id is None
    assert parsed.application is not None
    assert parsed.application.application_status is not None
    assert parsed.application.application_status.value == "some_future_status"


# --- the strict rules -----------------------------------------------------------------------------

BAD_URLS = ["ftp://x", "/relative", "example.com", "http://", "https://exa mple.com"]

STRICT_CASES: list[tuple[str, dict[str, Any], str, str | None]] = [
    # (case id, order, expected loc, text the message must hold)
    ("missing id", changed("id", _DELETE), "id", "missing"),
    ("null id", changed("id", None), "id", None),
    ("empty id", changed("id", ""), "id", None),
    ("id of 256 chars", changed("id", "x" * 256), "id", "255"),
    ("missing package", changed("package", _DELETE), "package", "missing"),
    ("missing package.id", changed("package.id", _DELETE), "package.id", "missing"),
    ("empty package.id", changed("package.id", ""), "package.id", None),
    ("missing application", changed("application", _DELETE), "application", "missing"),
    ("missing application.id", changed("application.id", _DELETE), "application.id", "missing"),
    ("missing candidate", changed("candidate", _DELETE), "candidate", "missing"),
    (
        "missing candidate.emails",
        changed("candidate.emails", _DELETE),
        "candidate.emails",
        "missing",
    ),
    ("empty candidate.emails", changed("candidate.emails", []), "candidate.emails", None),
    (
        "candidate email without value",
        changed("candidate.emails.0.value", _DELETE),
        "candidate.emails.0.value",
        "missing",
    ),
    (
        "invalid candidate email",
        changed("candidate.emails.0.value", "romain.example.com"),
        "candidate.emails.0.value",
        "email",
    ),
    ("invalid requester email", changed("requester.email", "john@"), "requester.email", "email"),
    (
        "invalid hiring team email",
        changed("job.hiring_team.0.email", "@gmail.com"),
        "job.hiring_team.0.email",
        "email",
    ),
    *[
        (
            f"profile_url {url!r}",
            changed("candidate.profile_url", url),
            "candidate.profile_url",
            "http",
        )
        for url in BAD_URLS
    ],
    *[
        (
            f"results_update_url {url!r}",
            changed("results_update_url", url),
            "results_update_url",
            "http",
        )
        for url in BAD_URLS
    ],
    (
        "undocumented application status",
        changed("application.application_status.value", "ghosted"),
        "application.application_status.value",
        "hired",
    ),
    ("unknown top-level field", changed("colour", "red"), "colour", "unknown field 'colour'"),
    (
        "unknown nested field",
        changed("candidate.emial", "x@example.com"),
        "candidate.emial",
        "unknown field 'emial'",
    ),
    (
        "unknown field in a list item",
        changed("job.hiring_team.0.phone", "1"),
        "job.hiring_team.0.phone",
        "unknown field 'phone'",
    ),
]


@pytest.mark.parametrize(
    ("order", "loc", "msg_part"),
    [case[1:] for case in STRICT_CASES],
    ids=[case[0] for case in STRICT_CASES],
)
def test_strict_rule_rejects_naming_the_field(
    order: dict[str, Any], loc: str, msg_part: str | None
) -> None:
    """Each strict rule rejects a bad order, naming the field at fault."""
    errors = invalid(order)
    assert [e.loc for e in errors] == [loc]
    if msg_part is not None:
        assert msg_part in errors[0].msg


def test_id_of_255_chars_is_accepted() -> None:
    """An id of 255 characters, the limit, is accepted and kept whole."""
    order, body = parse_order(changed("id", "x" * 255), max_bytes=MAX_BYTES)
    assert order.id == "x" * 255
    assert json.loads(body)["id"] == "x" * 255


def test_all_problems_are_reported_at_once() -> None:
    """Every problem of an order is reported at once, not just the first."""
    order = changed("id", "")
    order["candidate"]["emails"][0]["value"] = "nope"
    order["colour"] = "red"
    assert {e.loc for e in invalid(order)} == {"id", "candidate.emails.0.value", "colour"}


def test_minimal_order_is_enough() -> None:
    """The minimal order (ids and one email) is enough."""
    minimal = {
        "id": "o-1",
        "package": {"id": "p"},
        "application": {"id": "a"},
        "candidate": {"emails": [{"value": "a@example.com"}]},
    }
    _, body = parse_order(minimal, max_bytes=MAX_BYTES)
    assert json.loads(body) == minimal


def test_oversize_order_is_rejected_as_a_whole() -> None:
    """An order over the size limit is rejected as a whole; one at the limit is accepted."""
    _, body = parse_order(example(), max_bytes=MAX_BYTES)
    size = len(body.encode())
    parse_order(example(), max_bytes=size)  # exactly at the limit is fine
    errors = invalid(example(), max_bytes=size - 1)
    assert [e.loc for e in errors] == ["(order)"]
    assert str(size) in errors[0].msg


@pytest.mark.parametrize("text", ["{", '{"id": "x",}', "", "not json"])
def test_broken_json_is_rejected(text: str) -> None:
    """Broken JSON is rejected as the whole order, saying it is not JSON."""
    errors = invalid(text)
    assert [e.loc for e in errors] == ["(order)"]
    assert "JSON" in errors[0].msg


@pytest.mark.parametrize("text", ["[]", "[{}]", '"order"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_rejected(text: str) -> None:
    """JSON that is not an object is rejected as the whole order."""
    errors = invalid(text)
    assert [e.loc for e in errors] == ["(order)"]
    assert "object" in errors[0].msg


def test_invalid_order_message_names_the_fields() -> None:
    """An invalid order's message names each field, and its errors read as plain dicts."""
    with pytest.raises(InvalidOrder) as info:
        parse_order(changed("candidate.emial", "x"), max_bytes=MAX_BYTES)
    assert "candidate.emial" in str(info.value)
    assert info.value.errors[0].as_dict() == {
        "loc": "candidate.emial",
        "msg": "unknown field 'emial'",
    }


# --- passthrough and nulls ------------------------------------------------------------------------

ODD_PASSTHROUGH = {
    "weird key!": None,
    "nested": {"a": None, "b": [None, 1, {"c": None}], "d": {}},
    "": "empty key",
    "unicode ✓": ["x", 1.5, True],
}


@pytest.mark.parametrize(
    "path", ["passthrough", "application.passthrough", "job.passthrough", "candidate.passthrough"]
)
def test_passthrough_takes_any_keys_and_keeps_nulls_verbatim(path: str) -> None:
    """Passthrough takes any keys and keeps its nulls verbatim."""
    _, body = parse_order(changed(path, ODD_PASSTHROUGH), max_bytes=MAX_BYTES)
    node: Any = json.loads(body)
    for part in path.split("."):
        node = node[part]
    assert node == ODD_PASSTHROUGH


@pytest.mark.parametrize(
    "path",
    [
        "job",
        "requester",
        "results_update_url",
        "passthrough",
        "package.name",
        "application.application_status",
        "application.application_status.source_value",
        "application.application_status.value",
        "job.title",
        "job.hiring_team",
        "job.hiring_team.0.email",
        "candidate.first_name",
        "candidate.profile_url",
        "candidate.emails.0.type",
    ],
)
def test_nulls_outside_passthrough_are_left_out_of_the_body(path: str) -> None:
    """Nulls outside passthrough are left out of the body sent."""
    _, body = parse_order(changed(path, None), max_bytes=MAX_BYTES)
    assert json.loads(body) == changed(path, _DELETE)


# --- responses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (json.dumps(EXAMPLE_RESPONSE), EXAMPLE_RESPONSE),
        ("{}", {"id": None, "remote_id": None, "test_url": None}),
        ('{"id": "r1", "remote_id": "x"}', {"id": "r1", "remote_id": "x", "test_url": None}),
        (
            '{"id": "r1", "test_url": "https://t", "status": "new", "extra": {"a": [1]}}',
            {"id": "r1", "remote_id": None, "test_url": "https://t"},
        ),
        ('{"id": null, "test_url": null}', {"id": None, "remote_id": None, "test_url": None}),
    ],
    ids=["example", "empty", "no test_url", "extra fields", "nulls"],
)
def test_order_result_is_parsed_leniently(text: str, expected: dict[str, Any]) -> None:
    """The API's reply is read leniently: missing fields are None, unknown ones ignored."""
    assert OrderResult.model_validate_json(text).model_dump() == expected


# --- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account_id", "order_id"),
    [("acct", "o-1"), ("acct-test", "8187e5da-dc77-475e-9949-af0f1fa4e4e3"), ("a", "x:y:z")],
)
def test_order_key_and_split_key_round_trip(account_id: str, order_id: str) -> None:
    """An order key is `account:order` and splits back into both."""
    key = order_key(account_id, order_id)
    assert key == f"{account_id}:{order_id}"
    assert split_key(key) == (account_id, order_id)


@given(
    account_id=st.text(min_size=1).filter(lambda s: ":" not in s),
    order_id=st.text(min_size=1),
)
def test_split_key_inverts_order_key(account_id: str, order_id: str) -> None:
    """For any account and order id, splitting the key gives them back."""
    assert split_key(order_key(account_id, order_id)) == (account_id, order_id)


@pytest.mark.parametrize("key", ["no-colon", "", ":order", "acct:"])
def test_split_key_rejects_what_is_not_a_key(key: str) -> None:
    """What is not an order key is refused, not split wrongly."""
    with pytest.raises(ValueError, match="order key"):
        split_key(key)


@pytest.mark.parametrize("account_id", ["", "a:b", "a b", "a\tb", " a", "a\n"])
def test_check_account_id_rejects(account_id: str) -> None:
    """Account ids that would break the key (empty, a colon, spaces) are refused."""
    with pytest.raises(ValueError, match="account id"):
        check_account_id(account_id)


@pytest.mark.parametrize("account_id", ["acct", "acct-test", "45072196112816593343"])
def test_check_account_id_accepts(account_id: str) -> None:
    """Ordinary account ids are accepted as given."""
    assert check_account_id(account_id) == account_id
