"""The operations files, checked without Docker or a cluster (none runs here).

docker-compose.yml against the Compose specification; the Kubernetes manifests, alert rules and
dashboard parsed and held to what operating the service needs; every metric they query in the
exporter's contract; every command that compose, the Dockerfile, the manifests and the runbook
run exists in the package with the options they pass (a subcommand that does not exist fails
here, it is never skipped).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
BIN = Path(sys.executable).parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = OPS / "Dockerfile"
LOCK = OPS / "requirements.lock"
ALERTS = OPS / "prometheus" / "alerts.yml"
DASHBOARD = OPS / "grafana" / "order-dispatch.json"
RUNBOOK = OPS / "runbook.md"
K8S = OPS / "k8s"

# The exporter's contract: every metric the alert rules and the dashboard may query. A second test
# (the exporter's own) scrapes the real exporter and compares with its output.
METRICS = frozenset(
    {
        "order_dispatch_orders_total",
        "order_dispatch_retries_total",
        "order_dispatch_api_latency_seconds",
        "order_dispatch_queue_depth",
        "order_dispatch_orders_queued",
        "order_dispatch_orders_scheduled",
        "order_dispatch_orders_in_flight",
        "order_dispatch_dead_letters",
        "order_dispatch_circuit_open",
        "order_dispatch_rate_paused",
        "order_dispatch_callbacks_total",
        "order_dispatch_callbacks_pending",
        "order_dispatch_oldest_queued_seconds",
        "order_dispatch_workers_alive",
        "order_dispatch_poison_messages_total",
        "order_dispatch_redis_memory_used_bytes",
        "order_dispatch_redis_memory_max_bytes",
    }
)
METRIC_RE = re.compile(r"order_dispatch_[a-z_]+")
# Killing a worker mid-request is what the grace period must never do: it outlasts the API's
# 60 s abort and the worker's own HTTP timeout.
MIN_GRACE_S = 90
SEPARATORS = frozenset({"|", "||", "&&", ";", "&"})


# --- helpers ---------------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _compose() -> dict[str, Any]:
    data = _yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


def _k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def _k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for _, d in _k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in ops/k8s, found {len(found)}"
    return found[0]


def _metric_names(expr: str) -> set[str]:
    names = set()
    for name in METRIC_RE.findall(expr):
        for suffix in ("_bucket", "_sum", "_count"):
            name = name.removesuffix(suffix)
        names.add(name)
    return names


def _alert_rules() -> list[dict[str, Any]]:
    data = _yaml(ALERTS)
    return [rule for group in data["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def _setting_names() -> set[str]:
    """Every environment name `Settings` reads (DISPATCH_* and Sentry's own)."""
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if alias is None:
            names.add(f"DISPATCH_{field_name.upper()}")
        else:
            choices = getattr(alias, "choices", [alias])
            names.update(str(choice) for choice in choices)
    return names


def _installed_closure(requirements: list[Requirement]) -> set[str]:
    """The names of the installed distributions these requirements pull in, extras included."""
    seen: set[tuple[str, frozenset[str]]] = set()
    names: set[str] = set()
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue
        names.add(key[0])
        for line in dist.requires or []:
            sub = Requirement(line)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return names


def _parse_duration_s(value: str | int) -> float:
    if isinstance(value, int):
        return float(value)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    for number, unit in parts:
        total += float(number) * units[unit]
    return total


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _runbook_anchors() -> set[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def _readme_settings() -> set[str]:
    """The variables of the README's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names.update(re.findall(r"`((?:DISPATCH|SENTRY)_[A-Z_]+)`", line.split("|")[1]))
    return names


def _env_example_names() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, flags=re.MULTILINE))


# --- collecting the commands the ops files run -----------------------------------------------


def _tokens(command: str | list[str]) -> list[str]:
    """A command as argv; `sh -c SCRIPT` is unwrapped (liveness probes and healthchecks)."""
    argv = list(command) if isinstance(command, list) else shlex.split(command, comments=True)
    if argv[:1] in (["CMD"], ["CMD-SHELL"]):
        argv = shlex.split(argv[1]) if argv[0] == "CMD-SHELL" else argv[1:]
    if len(argv) >= 3 and argv[0] in ("sh", "/bin/sh", "bash") and argv[1] == "-c":
        argv = shlex.split(argv[2])
    return argv


def _invocations(argv: list[str]) -> Iterator[tuple[str, ...]]:
    """Every `order-dispatch ...` or `celery ...` inside argv, up to a shell separator."""
    for i, token in enumerate(argv):
        # `kubectl -n order-dispatch ...` names a namespace, not the program.
        if token in ("order-dispatch", "celery") and argv[i - 1 : i] not in (
            ["-n"],
            ["--namespace"],
        ):
            tail = []
            for arg in argv[i + 1 :]:
                if arg in SEPARATORS:
                    break
                tail.append(arg)
            yield (token, *tail)


def _compose_commands() -> Iterator[tuple[str, list[str]]]:
    for name, service in _compose()["services"].items():
        for key in ("entrypoint", "command"):
            if key in service:
                yield f"compose {name}.{key}", _tokens(service[key])
        if "healthcheck" in service and "test" in service["healthcheck"]:
            yield f"compose {name}.healthcheck", _tokens(service["healthcheck"]["test"])


def _dockerfile_commands() -> Iterator[tuple[str, list[str]]]:
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(CMD|ENTRYPOINT|HEALTHCHECK .*CMD)\s+(.+)$", line.strip())
        if match:
            body = match.group(2)
            argv = json.loads(body) if body.startswith("[") else shlex.split(body)
            yield f"Dockerfile {match.group(1).split()[0]}", argv


def _k8s_commands() -> Iterator[tuple[str, list[str]]]:
    for filename, doc in _k8s_documents():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            where = f"{filename} {container['name']}"
            argv = container.get("command", []) + container.get("args", [])
            if argv:
                yield where, _tokens(argv)
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                exec_ = container.get(probe, {}).get("exec")
                if exec_:
                    yield f"{where} {probe}", _tokens(exec_["command"])


def _runbook_commands() -> Iterator[tuple[str, list[str]]]:
    text = RUNBOOK.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```(?:sh)?\n(.*?)```", text, flags=re.DOTALL):
        lines += block.replace("\\\n", " ").splitlines()
    lines += re.findall(r"`(order-dispatch [^`]+)`", text)
    for line in lines:
        if "order-dispatch" in line:
            yield "runbook", shlex.split(line.replace("\\|", "|"), comments=True)


def _all_commands() -> list[tuple[str, tuple[str, ...]]]:
    found: dict[tuple[str, ...], str] = {}
    for source in (_compose_commands, _dockerfile_commands, _k8s_commands, _runbook_commands):
        for where, argv in source():
            for invocation in _invocations(argv):
                found.setdefault(invocation, where)
    return sorted((where, invocation) for invocation, where in found.items())


@functools.cache
def _help(argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def _subcommands(help_text: str) -> set[str]:
    if "Commands:" not in help_text:
        return set()
    block = help_text.split("Commands:", 1)[1]
    return set(re.findall(r"^  ([a-z][a-z0-9-]*)\b", block, flags=re.MULTILINE))


def _options(args: tuple[str, ...]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("-") and arg != "-"]


def _assert_options_in_help(options: list[str], help_text: str, where: str) -> None:
    for option in options:
        pattern = rf"(?<![\w-]){re.escape(option)}(?![\w-])"
        assert re.search(pattern, help_text), f"{where}: option {option} is not in its --help"


COMMANDS = _all_commands()


# --- docker-compose.yml ----------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    """docker-compose.yml is valid against the Compose specification's schema."""
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_broken_file(tmp_path: Path) -> None:
    """The check above is not vacuous: the bundled schema catches a misspelt key."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  worker:\n    image: x\n    stop_grace_perod: 120s\n")
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0


def test_compose_redis_is_durable_and_never_evicts() -> None:
    """Compose's Redis keeps an append-only file and never evicts broker or ledger keys."""
    redis = _compose()["services"]["redis"]
    assert str(redis["image"]).startswith("redis:7")
    args = " ".join(_tokens(redis["command"]))
    assert "--appendonly yes" in args
    assert "--appendfsync everysec" in args
    assert "--maxmemory-policy noeviction" in args
    assert _tokens(redis["healthcheck"]["test"]) == ["redis-cli", "ping"]
    assert any(str(v).endswith(":/data") for v in redis["volumes"])


def test_compose_worker_scales_and_stops_gracefully() -> None:
    """Compose's worker can be scaled (no fixed name or port) and is given time to drain."""
    worker = _compose()["services"]["worker"]
    assert "container_name" not in worker, "a fixed container name forbids --scale worker=N"
    assert "ports" not in worker, "a host port forbids --scale worker=N"
    argv = _tokens(worker["command"])
    assert argv[:4] == ["celery", "-A", "worker", "worker"]
    assert "%h" in argv[argv.index("-n") + 1], "each replica needs its own node name"
    assert worker["stop_signal"] == "SIGTERM"
    grace_s = _parse_duration_s(worker["stop_grace_period"])
    assert grace_s >= MIN_GRACE_S
    assert grace_s > Settings.model_fields["http_timeout_s"].default
    health = " ".join(_tokens(worker["healthcheck"]["test"]))
    assert "order-dispatch health" in health


def test_compose_runs_every_service_from_the_image_and_the_env_file() -> None:
    """Every Compose service but Redis runs from the one image and reads the .env file."""
    services = _compose()["services"]
    assert {"redis", "worker", "sandbox", "flower", "exporter", "producer"} <= set(services)
    for name, service in services.items():
        if name == "redis":
            continue
        assert service["build"] == {"context": ".", "dockerfile": "ops/Dockerfile"}, name
        env_files = service["env_file"]
        env_files = env_files if isinstance(env_files, list) else [env_files]
        assert ".env" in [e if isinstance(e, str) else e["path"] for e in env_files], name
    assert services["producer"]["profiles"] == ["demo"]
    sandbox = _tokens(services["sandbox"]["command"])
    assert sandbox[:2] == ["order-dispatch", "sandbox"]
    # Reachable from the other containers, on the port DISPATCH_API_URL names in .env.example.
    assert sandbox[sandbox.index("--host") + 1] != "127.0.0.1"
    assert sandbox[sandbox.index("--port") + 1] == "8080"
    assert _tokens(services["exporter"]["command"])[:2] == ["order-dispatch", "metrics"]
    assert _tokens(services["flower"]["command"])[:4] == ["celery", "-A", "worker", "flower"]


def test_compose_producer_enqueues_the_sample_orders_shipped_in_the_image() -> None:
    """Compose's producer enqueues a sample file that the image really contains."""
    argv = _tokens(_compose()["services"]["producer"]["command"])
    assert argv[:2] == ["order-dispatch", "enqueue"]
    in_image = argv[2]
    # The Dockerfile copies producer/ to /app/producer.
    assert in_image.startswith("/app/")
    assert (ROOT / in_image.removeprefix("/app/")).is_file()


def test_env_example_lists_every_setting_of_the_readme_and_loads() -> None:
    """.env.example names every setting of the README, and only settings that exist."""
    listed = _env_example_names()
    missing = _readme_settings() - listed
    assert not missing, f".env.example lacks {sorted(missing)}"
    assert {"SENTRY_DSN", "SENTRY_ENVIRONMENT", "SENTRY_RELEASE"} <= listed
    unknown = listed - _setting_names()
    assert not unknown, f".env.example names settings that do not exist: {sorted(unknown)}"
    # Settings reject unknown keys and bad values: the example is a working configuration.
    settings = Settings(_env_file=ROOT / ".env.example")
    assert settings.api_key.get_secret_value()


# --- Dockerfile and pins ---------------------------------------------------------------------


def test_dockerfile_is_slim_non_root_and_installs_from_pins() -> None:
    """The image is python:3.11-slim, runs as a non-root user and installs from the lock."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = [line.strip() for line in text.splitlines() if line.strip()[:1].isalpha()]
    froms = [line for line in instructions if line.startswith("FROM ")]
    assert froms and froms[-1].split()[1] == "python:3.11-slim"
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"^COPY\s+ops/requirements\.lock\s", text, flags=re.MULTILINE)
    assert re.search(r"pip install --no-cache-dir -r \S*requirements\.lock", text)
    assert re.search(r"pip install --no-cache-dir --no-deps \.", text)
    assert "PYTHONUNBUFFERED=1" in text
    assert not re.search(r"pip install[^\n]*\[dev\]", text), "no dev extras in the image"


def test_requirements_lock_pins_the_runtime_closure_and_no_dev_tools() -> None:
    """The lock pins every runtime dependency exactly and carries no development tool."""
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([A-Za-z0-9_.+!-]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    # The image installs `.[all]`: the base dependencies and every extra but dev (an extra that
    # names the package itself only gathers the others).
    extras = project["optional-dependencies"]
    runtime_requirements = [Requirement(d) for d in project["dependencies"]] + [
        Requirement(d)
        for extra, deps in extras.items()
        if extra != "dev"
        for d in deps
        if canonicalize_name(Requirement(d).name) != "order-dispatch"
    ]
    for requirement in runtime_requirements:
        dependency = str(requirement)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is a dependency but is not pinned"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {dependency}"
    assert "flower" in pins, "Flower runs from the image"
    # A dev tool may also be a runtime dependency's dependency (PyYAML, through
    # uvicorn[standard]); only those that are not must stay out of the image.
    runtime = _installed_closure(runtime_requirements)
    dev_tools = {canonicalize_name(Requirement(d).name) for d in extras["dev"]}
    leaked = (dev_tools - runtime) & set(pins)
    assert not leaked, f"dev tools in the image's pins: {sorted(leaked)}"
    assert "order-dispatch" not in pins


# --- Kubernetes --------------------------------------------------------------------------------


def test_every_k8s_manifest_has_api_version_kind_and_name() -> None:
    """Every Kubernetes manifest has an apiVersion, a kind and a name."""
    docs = _k8s_documents()
    assert docs
    for filename, doc in docs:
        assert isinstance(doc, dict), filename
        assert doc.get("apiVersion"), filename
        assert doc.get("kind"), filename
        assert doc.get("metadata", {}).get("name"), filename
    kinds = {doc["kind"] for _, doc in docs}
    expected = {"Deployment", "ScaledObject", "PodDisruptionBudget", "Service", "Secret"}
    assert expected | {"ConfigMap"} <= kinds


def test_k8s_worker_deployment_drains_and_is_probed() -> None:
    """The worker pods get a grace period longer than a POST, and a liveness probe."""
    worker = _k8s("Deployment", "order-dispatch-worker")
    pod = worker["spec"]["template"]["spec"]
    grace_s = pod["terminationGracePeriodSeconds"]
    assert grace_s >= MIN_GRACE_S
    assert grace_s > Settings.model_fields["http_timeout_s"].default
    (container,) = pod["containers"]
    assert container["command"][:4] == ["celery", "-A", "worker", "worker"]
    probe = container["livenessProbe"]
    assert "order-dispatch health" in " ".join(_tokens(probe["exec"]["command"]))
    assert probe["periodSeconds"] <= 10
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    refs = {next(iter(ref)): ref[next(iter(ref))]["name"] for ref in container["envFrom"]}
    assert _k8s("ConfigMap", refs["configMapRef"])
    assert _k8s("Secret", refs["secretRef"])
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"


def test_k8s_scaled_object_scales_the_workers_on_the_celery_queue() -> None:
    """KEDA scales the worker Deployment on the length of the Celery queue."""
    scaled = _k8s("ScaledObject", "order-dispatch-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"]["name"] == "order-dispatch-worker"
    assert spec["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert spec["minReplicaCount"] >= 1
    assert spec["maxReplicaCount"] > spec["minReplicaCount"]
    assert spec["cooldownPeriod"] > 0
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "redis"
    meta = trigger["metadata"]
    assert meta["listName"] == Settings.model_fields["queue"].default
    assert int(meta["listLength"]) > 0
    assert "address" in meta and "databaseIndex" in meta
    scale_down = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]
    assert scale_down["stabilizationWindowSeconds"] >= 60
    assert scale_down["policies"]


def test_k8s_disruption_budget_and_exporter_select_their_pods() -> None:
    """The disruption budget and the exporter select the pods they are meant for."""
    worker_labels = _k8s("Deployment", "order-dispatch-worker")["spec"]["template"]["metadata"]
    pdb = _k8s("PodDisruptionBudget", "order-dispatch-worker")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= worker_labels["labels"].items()

    exporter = _k8s("Deployment", "order-dispatch-exporter")
    (container,) = exporter["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["order-dispatch", "metrics"]
    service = _k8s("Service", "order-dispatch-exporter")
    assert [p["port"] for p in service["spec"]["ports"]] == [9808]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["metadata"]["annotations"]["prometheus.io/port"] == "9808"
    exporter_labels = exporter["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= exporter_labels.items()


def test_k8s_secret_is_a_template_and_config_names_real_settings() -> None:
    """The Secret is a template of the secret settings; the ConfigMap names real settings only."""
    secret = _k8s("Secret", "order-dispatch-secrets")
    values = secret["stringData"]
    assert set(values) == {
        "DISPATCH_API_KEY",
        "DISPATCH_CALLBACK_SECRET",
        "SENTRY_DSN",
        "DISPATCH_REDIS_URL",
    }
    assert all(v.startswith("<") and v.endswith(">") for v in values.values()), "placeholders"
    config = _k8s("ConfigMap", "order-dispatch-config")["data"]
    unknown = (set(values) | set(config)) - _setting_names()
    assert not unknown, f"not settings: {sorted(unknown)}"
    assert not set(values) & set(config), "a setting is either secret or not"


def test_k8s_readme_covers_sentinel_tls_and_cluster() -> None:
    """The k8s README shows Sentinel and TLS URLs with their options, and speaks of Cluster."""
    text = (K8S / "README.md").read_text(encoding="utf-8")
    assert "sentinel://" in text and "master_name" in text
    assert "rediss://" in text and "ssl_cert_reqs=required" in text
    assert "Redis Cluster" in text


# --- Prometheus and Grafana --------------------------------------------------------------------


def test_alert_rules_are_complete_and_link_their_runbook_section() -> None:
    """Each alert rule has an expression, a severity and a link to an existing runbook section."""
    rules = _alert_rules()
    assert rules
    anchors = _runbook_anchors()
    for rule in rules:
        name = rule["alert"]
        assert rule["expr"].strip(), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"], name
        assert rule["annotations"]["description"], name
        url = rule["annotations"]["runbook_url"]
        assert "ops/runbook.md#" in url, name
        assert url.split("#", 1)[1] in anchors, f"{name}: no runbook section {url}"
        if "for" in rule:
            _parse_duration_s(rule["for"])
    used = set().union(*(_metric_names(rule["expr"]) for rule in rules))
    watched = {
        "order_dispatch_orders_total",
        "order_dispatch_dead_letters",
        "order_dispatch_circuit_open",
        "order_dispatch_oldest_queued_seconds",
        "order_dispatch_workers_alive",
        "order_dispatch_callbacks_total",
        "order_dispatch_poison_messages_total",
        "order_dispatch_rate_paused",
    }
    assert watched <= used, f"no alert on {sorted(watched - used)}"


def test_alert_rules_and_dashboard_use_only_exported_metrics() -> None:
    """Alerts and the dashboard query only metrics the exporter serves."""
    exprs = [rule["expr"] for rule in _alert_rules()] + _dashboard_exprs()
    used = set().union(*(_metric_names(expr) for expr in exprs))
    assert used
    assert used <= METRICS, f"not exported: {sorted(used - METRICS)}"


def test_alert_rules_pass_promtool_where_it_is_installed() -> None:
    """promtool accepts the alert rules (skipped where promtool is not installed)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_has_a_prometheus_variable_and_a_panel_per_metric() -> None:
    """The dashboard picks its Prometheus by variable and has a panel for each metric."""
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36
    variables = dashboard["templating"]["list"]
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" for v in variables)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["title"] and panel["targets"], panel.get("title")
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    exprs = _dashboard_exprs()
    used = set().union(*(_metric_names(expr) for expr in exprs))
    assert used == METRICS, f"no panel for {sorted(METRICS - used)}"
    latency = [e for e in exprs if "order_dispatch_api_latency_seconds_bucket" in e]
    quantiles = {q for e in latency for q in re.findall(r"histogram_quantile\(([\d.]+)", e)}
    assert quantiles == {"0.5", "0.95", "0.99"}


def test_exported_metric_names_match_the_contract() -> None:
    """The exporter serves every metric the contract names."""
    if importlib.util.find_spec("worker.obs.metrics") is None:
        pytest.skip("worker.obs.metrics does not exist yet (the exporter is being written)")
    exported = set(importlib.import_module("worker.obs.metrics").METRIC_NAMES)
    missing = {
        name
        for name in METRICS
        if name not in exported and name.removesuffix("_total") not in exported
    }
    assert not missing, (
        f"the ops files query metrics the exporter does not define: {sorted(missing)}"
    )


# --- runbook and README --------------------------------------------------------------------------


def test_runbook_links_resolve_and_cover_the_procedures() -> None:
    """The runbook's links resolve and it covers every operating procedure."""
    text = RUNBOOK.read_text(encoding="utf-8")
    anchors = _runbook_anchors()
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, f"broken link #{link}"
    for section in (
        "replay-dead-letters",
        "auth-failures",
        "rate-limits",
        "rotate-the-api-key",
        "rotate-the-callback-secret",
        "scale",
        "redis-failover",
    ):
        assert section in anchors, section
    assert "dead replay --all --reason rejected --since 1d --dry-run" in text


def test_readme_deployment_section_links_the_ops_files() -> None:
    """The README's Deployment section links every ops file."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"\]\(([^)#]+)\)", section)
    for expected in (
        "docker-compose.yml",
        "ops/Dockerfile",
        "ops/k8s/README.md",
        "ops/runbook.md",
        "ops/prometheus/alerts.yml",
        "ops/grafana/order-dispatch.json",
    ):
        assert expected in links, expected
    for link in links:
        assert (ROOT / link).exists(), link


# --- every command the ops files run exists ------------------------------------------------------


def test_ops_files_run_the_expected_commands() -> None:
    """The collection below is not empty-handed: it finds what the brief requires."""
    found = {invocation[:2] for _, invocation in COMMANDS}
    for expected in ("health", "sandbox", "metrics", "enqueue", "stats"):
        assert ("order-dispatch", expected) in found, expected
    assert any(inv[:4] == ("celery", "-A", "worker", "worker") for _, inv in COMMANDS)


def _command_id(invocation: tuple[str, ...]) -> str:
    if invocation[0] == "celery":
        return " ".join(invocation[:1] + invocation[3:4])
    words = [w for w in invocation[1:3] if not w.startswith("-") and w.islower()]
    return " ".join([invocation[0], *words])


@pytest.mark.parametrize(
    ("where", "invocation"), COMMANDS, ids=[_command_id(inv) for _, inv in COMMANDS]
)
def test_command_exists_with_its_options(where: str, invocation: tuple[str, ...]) -> None:
    """Every command the docs tell an operator to run exists, with the options they show."""
    program, *args = invocation
    if program == "celery":
        _check_celery(where, tuple(args))
        return
    path = [program]
    result = _help(tuple(path))
    assert result.returncode == 0, result.stderr
    rest = list(args)
    # Walk down the command groups (`order-dispatch dead replay`) as far as the words go.
    while rest and rest[0] in _subcommands(result.stdout):
        path.append(rest.pop(0))
        result = _help(tuple(path))
        assert result.returncode == 0, f"{where}: `{' '.join(path)} --help`: {result.stderr}"
    assert len(path) > 1 or not rest or rest[0].startswith("-"), (
        f"{where}: `{program} {rest[0]}` is not a command of {program} "
        f"(it has: {sorted(_subcommands(result.stdout))})"
    )
    _assert_options_in_help(_options(tuple(rest)), result.stdout, f"{where}: {' '.join(path)}")


def _check_celery(where: str, args: tuple[str, ...]) -> None:
    assert args[:2] == ("-A", "worker"), f"{where}: celery must load the app with -A worker"
    sub, rest = args[2], args[3:]
    if sub == "flower":
        if importlib.util.find_spec("flower") is None:
            pytest.skip("flower is installed in the image only (ops/requirements.lock), not here")
        import flower.options  # noqa: F401 - defines Flower's tornado options
        from tornado.options import options

        known = {name.replace("_", "-") for name in options.as_dict()}
        for option in _options(rest):
            assert option.lstrip("-") in known, f"{where}: flower has no option {option}"
        return
    result = _help(("celery", "-A", "worker", sub))
    assert result.returncode == 0, f"{where}: `celery -A worker {sub} --help`: {result.stderr}"
    _assert_options_in_help(_options(rest), result.stdout, f"{where}: celery {sub}")


def test_every_metric_the_alerts_and_dashboard_use_is_served_by_the_exporter(
    redis_url: str,
) -> None:
    """Scrape the real exporter (against a real, empty Redis) and compare with what the alert
    rules and the dashboard query."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from sandbox.processes import free_port
    from tests.conftest import make_settings
    from worker.obs.metrics import start_metrics_server

    server = start_metrics_server("127.0.0.1", free_port(), make_settings(redis_url))
    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text
    finally:
        server.close()
    served = set()
    for family in text_string_to_metric_families(text):
        served.add(family.name)
        for sample in family.samples:
            served |= _metric_names(sample.name)
    served = {name.removesuffix("_total") for name in served} | served
    exprs = [rule["expr"] for rule in _alert_rules()] + _dashboard_exprs()
    used = set().union(*(_metric_names(expr) for expr in exprs))
    assert used and used <= served, f"queried but not served: {sorted(used - served)}"
