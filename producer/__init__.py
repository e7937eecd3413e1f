"""What the ATS sync job imports: validate and enqueue orders, and read what became of them."""

from producer.api import Dispatcher, EnqueueReport, EnqueueResult, EnqueueStopped, Line

__all__ = ["Dispatcher", "EnqueueReport", "EnqueueResult", "EnqueueStopped", "Line"]
