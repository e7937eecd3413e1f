"""Commands that run pieces on this machine: the sandbox API, a callback receiver, the demo and
the benchmark."""

from __future__ import annotations

import sys

import click

from producer.cli.common import EX_CONFIG, emit_json, err, load_settings, out


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--api-key", default=None, help="Accept only this API key (default: any non-empty).")
@click.option("--latency-ms", default=0.0, type=float, help="Added to every POST.")
@click.option(
    "--fail-status",
    default=None,
    type=int,
    help="Answer this status to the first --fail-times attempts of each order.",
)
@click.option("--fail-times", default=0, type=int)
@click.option("--retry-after", default=None, help="Retry-After sent with --fail-status.")
@click.option(
    "--drop-times",
    default=0,
    type=int,
    help="Create, then drop the connection, for the first N attempts of each order.",
)
@click.option("--reject-status", default=None, type=int, help="Answer this status to every POST.")
@click.option("--no-idempotency", is_flag=True, help="Create again on a repeated Idempotency-Key.")
def sandbox(
    host: str,
    port: int,
    api_key: str | None,
    latency_ms: float,
    fail_status: int | None,
    fail_times: int,
    retry_after: str | None,
    drop_times: int,
    reject_status: int | None,
    no_idempotency: bool,
) -> None:
    """Serve a StackOne-compatible sandbox of the orders endpoint, with faults to inject."""
    from sandbox.app import Faults, serve

    faults = Faults(
        latency_ms=latency_ms,
        fail_status=fail_status,
        fail_times=fail_times,
        retry_after=retry_after,
        drop_times=drop_times,
        reject_status=reject_status,
        honor_idempotency=not no_idempotency,
    )
    err.print(
        f"sandbox listening on http://{host}:{port} (faults: PUT /_sandbox/faults, "
        f"counts: GET /_sandbox/stats)"
    )
    serve(host, port, api_key, faults=faults)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
def listen(host: str, port: int) -> None:
    """Receive callbacks here: verify each signature with DISPATCH_CALLBACK_SECRET and print it.

    Point workers at it with DISPATCH_CALLBACK_URL=http://HOST:PORT/ and the same secret.
    """
    from sandbox.listen import serve_listener

    settings = load_settings()
    secret = settings.callback_secret.get_secret_value()
    if not secret:
        err.print(
            "[red]configuration error[/]: set DISPATCH_CALLBACK_SECRET (whsec_...) to the "
            "secret the workers sign with"
        )
        sys.exit(EX_CONFIG)
    serve_listener(host, port, secret, out)


@click.command()
@click.option("--orders", default=4000, show_default=True, help="Orders per end-to-end run.")
@click.option("--concurrency", default=64, show_default=True, help="Requests in flight.")
@click.option(
    "--high-concurrency",
    default=256,
    show_default=True,
    help="In flight for the 100 ms run that checks throughput grows.",
)
@click.option(
    "--latency-ms",
    "latencies",
    multiple=True,
    type=float,
    default=[0.0, 100.0],
    show_default=True,
    help="API latencies to measure at (repeatable).",
)
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes sharing the high-concurrency run, besides one  [default: CPUs].",
)
@click.option("--pools", is_flag=True, help="Also compare worker pools at 100 ms and 1 s.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every figure.")
def bench(
    orders: int,
    concurrency: int,
    high_concurrency: int,
    latencies: tuple[float, ...],
    processes: int | None,
    pools: bool,
    as_json: bool,
) -> None:
    """Measure throughput as ratios against limits measured in the same run."""
    import os
    import tempfile
    from pathlib import Path

    from sandbox.bench.report import print_report
    from sandbox.bench.run import run_bench

    logs = Path(tempfile.mkdtemp(prefix="od-bench-"))
    result = run_bench(
        orders=orders,
        concurrency=concurrency,
        high_concurrency=high_concurrency,
        latencies_ms=list(latencies),
        redis_url=os.environ.get("DISPATCH_REDIS_URL"),
        logs=logs,
        say=lambda text: err.print(text),
        pools=pools,
        processes=processes or os.cpu_count() or 1,
    )
    if as_json:
        emit_json(result)
    else:
        print_report(result, out)


@click.command()
@click.option("--timeout", "timeout_s", default=90.0, show_default=True, type=float)
def demo(timeout_s: float) -> None:
    """Run the whole pipeline here: Redis, the sandbox, a worker, the sample orders."""
    from sandbox.demo import run_demo

    sys.exit(run_demo(load_settings(), timeout_s=timeout_s, console=out))
