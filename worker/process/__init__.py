"""The Celery process: the only package that imports celery or kombu.

- `app`: the Celery app and its broker configuration (`celery -A worker worker` finds it as
  `worker.app`).
- `tasks`: the two thin tasks, dispatch and deliver: they hand the keys a message names to the
  runtime and decide what becomes of the message.
- `transport`: kombu's Redis transport, guarded against malformed messages.
- `runtime`: one per process: the Redis clients, the ledgers, the HTTP clients, the keeper
  thread (lease renewal, heartbeat and progress report, pump) and the event loop.
- `held`: the leases and messages a process holds, for the keeper to renew.
- `progress`: the marks of a process's progress and the probe of its event loop: what the
  heartbeat's progress report says, and when the keeper gives up the order leases.
- `eventloop`: the asyncio (uvloop) loop thread that attempts orders.

Nothing outside this package imports it, except `worker.app`'s lazy attribute.
"""
