"""What the ledger's steps need to know of the settings, as one value (`LedgerConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from worker.flow import CircuitPolicy, RateLimit
from worker.ledger.keys import FlowKeys
from worker.settings import Settings


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    queue: str = "order-dispatch"
    ttl_s: int = 30 * 86400
    stream_maxlen: int = 100_000
    batch_max: int = 16
    batch_spread: int = 64
    deadline_s: float = 86400.0
    lease_s: float = 30.0
    hold_ambiguous: bool = False
    pump_limit: int = 1000
    flow: FlowKeys = field(default_factory=lambda: FlowKeys("default"))
    circuit: CircuitPolicy = field(default_factory=CircuitPolicy)
    rate: RateLimit = field(default_factory=RateLimit)
    probe_ttl_s: float = 90.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LedgerConfig:
        return cls(
            flow=FlowKeys.for_api_key(settings.api_key.get_secret_value()),
            circuit=CircuitPolicy(settings.circuit_threshold, settings.circuit_cooldown_s),
            rate=RateLimit.parse(settings.rate_limit, max_wait_s=settings.rate_wait_max_s),
            probe_ttl_s=settings.http_timeout_s + 15,
            queue=settings.queue,
            ttl_s=settings.retention_s,
            stream_maxlen=settings.stream_maxlen,
            batch_max=settings.batch_max,
            batch_spread=settings.batch_spread,
            deadline_s=settings.retry_deadline_s,
            lease_s=settings.lease_s,
            hold_ambiguous=settings.on_ambiguous == "hold",
        )
