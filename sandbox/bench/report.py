"""The benchmark's figures for a person: a table per part, ratios beside their limits."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_report(result: dict[str, Any], console: Console) -> None:
    p = result["producer"]
    console.print(
        f"producer: {p['orders_per_s']:,.0f} accepted orders/s "
        f"(raw Redis pipeline {p['raw_pipeline_per_s']:,.0f}/s, ratio {p['ratio']:.2f})"
    )
    table = Table(title=f"end to end, {result['orders']} orders")
    for column in (
        "run",
        "orders/s",
        "direct limit/s",
        "ratio",
        "plain Celery/s",
        "ratio",
        "Redis trips/order",
        "worker peak RSS MB (each)",
    ):
        table.add_column(column, justify="right")
    for name, run in result.items():
        if not name.startswith("latency_"):
            continue
        plain = run.get("plain_celery_per_s")
        table.add_row(
            name.removeprefix("latency_").replace("_", " "),
            f"{run['orders_per_s']:,.0f}",
            f"{run['direct_limit_per_s']:,.0f} ({run['direct_client']})",
            f"{run['ratio_to_direct']:.2f}",
            f"{plain:,.0f}" if plain else "-",
            f"{run['ratio_to_plain_celery']:.2f}" if plain else "-",
            f"{run['redis_round_trips_per_order']:.1f}",
            f"{run['worker_peak_rss_mb']:.0f}",
        )
    console.print(table)
    if "pools" in result:
        pools = Table(title="worker pools")
        for column in ("pool", "concurrency", "API latency ms", "orders/s", "limit/s", "RSS MB"):
            pools.add_column(column, justify="right")
        for row in result["pools"]:
            if "note" in row:
                pools.add_row(row["pool"], "-", f"{row['latency_ms']:.0f}", row["note"], "-", "-")
                continue
            pools.add_row(
                row["pool"],
                str(row["concurrency"]),
                f"{row['latency_ms']:.0f}",
                f"{row['orders_per_s']:,.0f}",
                f"{row['limit_per_s']:,.0f}",
                f"{row['worker_peak_rss_mb']:.0f}",
            )
        console.print(pools)
