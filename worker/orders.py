"""The order contract: StackOne's request and response bodies (the endpoint, its auth and the
order key are `worker.identity`'s).

Two layers, modelled once:

- the *upstream* models mirror `POST /unified/ats/assessments/orders` field for field, as
  StackOne describes it: every field optional, unknown fields ignored, enums open. Responses are
  parsed with them (`OrderResult`), and the sandbox checks request bodies with them.
- the *strict* models (`Order` and its parts) narrow those same fields to what order-dispatch
  accepts from a producer (SPEC §2): required identities, a candidate email, checked emails and
  URLs, the documented application statuses, and no unknown fields outside `passthrough`.

The body POSTed is the enqueued order, field for field, minus nulls (`order_body`).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal, get_args

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

ApplicationStatusValue = Literal[
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
]
APPLICATION_STATUSES: tuple[str, ...] = get_args(ApplicationStatusValue)
MAX_ORDER_ID_CHARS = 255
Passthrough = dict[str, Any]


def _check_email(value: str) -> str:
    """Syntax only (no DNS): the address is kept exactly as given."""
    problem = _email_problem(value)
    if problem is not None:
        raise ValueError(f"not a valid email address: {problem}")
    return value


@functools.lru_cache(maxsize=16384)
def _email_problem(value: str) -> str | None:
    """Why `value` is not an address, or None. Cached: the same recruiters' and hiring managers'
    addresses come back order after order, and checking one was most of the producer's time."""
    try:
        # Syntax only: no DNS, and special-use domains (.test, .local) are still addresses.
        validate_email(value, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError as exc:
        return str(exc)
    return None


def _check_http_url(value: str) -> str:
    scheme, sep, rest = value.partition("://")
    host = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if (
        not sep
        or scheme.lower() not in ("http", "https")
        or not host
        or any(c.isspace() for c in value)
    ):
        raise ValueError("must be an absolute http(s) URL")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
Identifier = Annotated[str, Field(min_length=1)]


# --- upstream: StackOne's shapes, lenient -------------------------------------------------------


class Upstream(BaseModel):
    model_config = ConfigDict(extra="ignore")


class OrderPackage(Upstream):
    id: str | None = None
    remote_id: str | None = None
    name: str | None = None
    description: str | None = None


class ApplicationStatus(Upstream):
    value: str | None = None
    source_value: JsonValue = None


class OrderApplication(Upstream):
    id: str | None = None
    remote_id: str | None = None
    application_status: ApplicationStatus | None = None
    passthrough: Passthrough | None = None


class HiringTeamMember(Upstream):
    user_id: str | None = None
    remote_user_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    role: str | None = None


class OrderJob(Upstream):
    id: str | None = None
    remote_id: str | None = None
    title: str | None = None
    hiring_team: list[HiringTeamMember] | None = None
    passthrough: Passthrough | None = None


class CandidateEmail(Upstream):
    type: str | None = None
    value: str | None = None


class OrderCandidate(Upstream):
    id: str | None = None
    remote_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    emails: list[CandidateEmail] | None = None
    passthrough: Passthrough | None = None
    profile_url: str | None = None


class UpstreamOrder(Upstream):
    """The request body as StackOne documents it (nothing required)."""

    id: str | None = None
    package: OrderPackage | None = None
    application: OrderApplication | None = None
    job: OrderJob | None = None
    candidate: OrderCandidate | None = None
    requester: HiringTeamMember | None = None
    results_update_url: str | None = None
    passthrough: Passthrough | None = None


class OrderResult(Upstream):
    """The 200 reply: every field optional, unknown fields ignored."""

    id: str | None = None
    remote_id: str | None = None
    test_url: str | None = None


# --- strict: what a producer may enqueue ----------------------------------------------------------

STRICT = ConfigDict(extra="forbid")


class StrictPackage(OrderPackage):
    model_config = STRICT
    id: Identifier


class StrictApplicationStatus(ApplicationStatus):
    model_config = STRICT
    value: ApplicationStatusValue | None = None


class StrictApplication(OrderApplication):
    model_config = STRICT
    id: Identifier
    application_status: StrictApplicationStatus | None = None


class StrictHiringTeamMember(HiringTeamMember):
    model_config = STRICT
    email: Email | None = None


class StrictJob(OrderJob):
    model_config = STRICT
    # A list of the stricter parts: narrower on purpose (mypy sees lists as invariant).
    hiring_team: list[StrictHiringTeamMember] | None = None  # type: ignore[assignment]


class StrictCandidateEmail(CandidateEmail):
    model_config = STRICT
    value: Email


class StrictCandidate(OrderCandidate):
    model_config = STRICT
    emails: Annotated[list[StrictCandidateEmail], Field(min_length=1)]  # type: ignore[assignment]
    profile_url: HttpUrl | None = None


class Order(UpstreamOrder):
    """An assessment order as order-dispatch accepts it (SPEC §2)."""

    model_config = STRICT
    id: Annotated[str, Field(min_length=1, max_length=MAX_ORDER_ID_CHARS)]
    package: StrictPackage
    application: StrictApplication
    job: StrictJob | None = None
    candidate: StrictCandidate
    requester: StrictHiringTeamMember | None = None
    results_update_url: HttpUrl | None = None


# --- helpers ------------------------------------------------------------------------------------
