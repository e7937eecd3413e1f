"""How order-dispatch's log lines are written: JSON (production) or console text, on stderr,
by one thread that takes the records from a queue (so the event loop never blocks on a write).
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import time
from typing import Any

from worker.logs import logger

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, default=str)


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in record.__dict__.items()
            if k not in _STANDARD and not k.startswith("_")
        )
        return f"{record.levelname.lower():<7} {record.getMessage():<22} {extras}".rstrip()


_listener: logging.handlers.QueueListener | None = None


def configure(fmt: str = "json", level: int = logging.INFO) -> None:
    """Send order-dispatch's lines to stderr in the chosen format (called by entry points).

    The event loop logs a line per order step: it hands its records to a queue, and one thread
    writes them, so the loop never waits on the stream.
    """
    global _listener
    if _listener is not None:
        _listener.stop()
    else:
        atexit.register(_stop)  # once: the listener it stops is whichever is current
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    logger.handlers[:] = [_PassThroughQueueHandler(records)]
    logger.setLevel(level)
    logger.propagate = False


def _stop() -> None:
    if _listener is not None:
        _listener.stop()


class _PassThroughQueueHandler(logging.handlers.QueueHandler):
    """Queue the record as it is: the listener's handler formats it, off the event loop."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record
