"""Observability: log formatting, Sentry, the fleet snapshot and the Prometheus exporter.

- `logformat`: JSON or console lines, written off the event loop (the events are `worker.logs`).
- `sentry`: the SDK's setup, its scrubber, and one event per dead order.
- `deaths`: that event from each place an order dies (an attempt, a callback, a lost worker).
- `snapshot`: the fleet's state read from Redis in one round trip (stats, health, exporter).
- `liveness`: a worker's progress report, and the health probe's judgment of it.
- `metrics`: the Prometheus exporter over the snapshot.

The only package that imports sentry_sdk or prometheus_client.
"""
