"""The Celery configuration built from the settings: Sentinel, TLS, and the reliability knobs."""

from __future__ import annotations

import ssl

from worker.ledger.connect import sentinel_hosts
from worker.process.app import celery_config
from worker.settings import Settings


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_the_reliability_settings() -> None:
    """Celery acks late, prefetches one, speaks JSON only and sizes its pool to the threads."""
    config = celery_config(settings(worker_concurrency=32))
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["accept_content"] == ["json"] and config["task_serializer"] == "json"
    assert config["worker_pool"] == "threads" and config["worker_concurrency"] == 32
    assert config["broker_transport_options"]["max_connections"] >= 2 * 512 + 10
    big = celery_config(settings(worker_concurrency=1000))
    assert big["broker_transport_options"]["max_connections"] == 2 * 1000 + 10
    assert config["broker_transport"] == "worker.process.transport:Transport"


def test_sentinel_urls_get_the_sentinel_transport_and_the_master_name() -> None:
    """Sentinel URLs get the guarded Sentinel transport, every host and the master's name."""
    url = "sentinel://:pw@s1.example:26379/2;sentinel://:pw@s2.example:26380/2"
    config = celery_config(settings(redis_url=url, redis_sentinel_master="orders"))
    assert config["broker_url"] == url
    assert config["broker_transport"] == "worker.process.transport:SentinelTransport"
    assert config["broker_transport_options"]["master_name"] == "orders"
    assert sentinel_hosts(url) == ([("s1.example", 26379), ("s2.example", 26380)], 2, "pw")


def test_rediss_urls_check_certificates_unless_told_otherwise() -> None:
    """rediss:// checks the server's certificate unless the URL says ssl_cert_reqs=none."""
    config = celery_config(settings(redis_url="rediss://:pw@redis.example:6380/0"))
    assert config["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    assert config["broker_transport"] == "worker.process.transport:Transport"
    relaxed = celery_config(settings(redis_url="rediss://redis.example:6380/0?ssl_cert_reqs=none"))
    assert relaxed["broker_use_ssl"] == {"ssl_cert_reqs": ssl.CERT_NONE}
    assert "broker_use_ssl" not in celery_config(settings())
