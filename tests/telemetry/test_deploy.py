"""deploy/ cannot run here (no container engine), so it is validated by reading it.

Files parse; compose services, ports, volumes and configs refer to each other
consistently; every metric and label the Grafana dashboard queries is one mcpfence
really exports (scraped from its own Prometheus endpoint); the Kubernetes manifests
fit together and carry a config and policies that ``mcpfence check`` accepts.
"""

from __future__ import annotations

import io
import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mcpfence import policy_cli
from mcpfence.config import Config, load_config
from tests.servers import serve_asgi
from tests.telemetry.conftest import Recorded

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
REPO = DEPLOY.parent
PROMETHEUS_LABELS = {"le", "job", "instance"}


def load(name: str) -> Any:
    return yaml.safe_load((DEPLOY / name).read_text())


def k8s_manifests() -> list[Path]:
    return sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in k8s_manifests() for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s(kind: str, name: str | None = None) -> dict[str, Any]:
    [found] = [
        doc
        for doc in k8s_documents()
        if doc["kind"] == kind and name in (None, doc["metadata"]["name"])
    ]
    return found


COMPOSE = load("docker-compose.yml")
SERVICES: dict[str, Any] = COMPOSE["services"]
COLLECTOR = load("otel-collector.yaml")
DASHBOARD = json.loads((DEPLOY / "grafana/dashboards/mcpfence.json").read_text())


def port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yaml", ".yml", ".json"}),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_file_is_well_formed(path: Path) -> None:
    if path.suffix == ".json":
        assert json.loads(path.read_text())
    else:
        assert all(doc for doc in yaml.safe_load_all(path.read_text()))


# Dockerfile


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_installs_the_package_on_python_slim() -> None:
    instructions = dockerfile()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert any(kind == "RUN" and "pip install ." in arg for kind, arg in instructions)


def test_dockerfile_copies_only_what_exists() -> None:
    for kind, arg in dockerfile():
        if kind == "COPY":
            *sources, _ = shlex.split(arg)
            assert all((REPO / source).exists() for source in sources), arg


def test_dockerfile_runs_mcpfence_serve_as_non_root() -> None:
    instructions = dict(dockerfile())
    assert instructions["USER"] not in {"root", "0"}
    assert json.loads(instructions["ENTRYPOINT"]) == ["mcpfence"]
    assert json.loads(instructions["CMD"])[:2] == ["serve", "--config"]


# docker-compose.yml


REPLICAS = ["mcpfence-1", "mcpfence-2", "mcpfence-3"]
MCPFENCE = SERVICES["mcpfence-1"]


def compose_config(replica: str = "mcpfence-1") -> Config:
    """deploy/mcpfence.yaml as one compose replica reads it."""
    return load_config(DEPLOY / "mcpfence.yaml", env=SERVICES[replica]["environment"])


def test_compose_runs_the_whole_stack() -> None:
    assert set(SERVICES) == {
        *REPLICAS,
        "nginx",
        "redis",
        "ipost",
        "postmark",
        "otel-collector",
        "jaeger",
        "prometheus",
        "grafana",
    }


def test_compose_builds_mcpfence_from_the_deploy_dockerfile() -> None:
    build = MCPFENCE["build"]
    context = (DEPLOY / build["context"]).resolve()
    assert context == REPO
    assert (context / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_dependencies_are_services() -> None:
    for name, service in SERVICES.items():
        assert set(service.get("depends_on", [])) <= set(SERVICES) - {name}


def test_compose_bind_mounts_exist_and_named_volumes_are_declared() -> None:
    for service in SERVICES.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
            else:
                assert source in COMPOSE["volumes"], volume


def test_compose_publishes_distinct_ports_on_loopback_only() -> None:
    published = [p for s in SERVICES.values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in published)
    assert len({p.split(":")[1] for p in published}) == len(published)


def test_compose_mounts_the_config_that_mcpfence_serve_reads() -> None:
    service = MCPFENCE
    targets = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    config = option(service["command"], "--config")
    assert (DEPLOY / targets[config]).resolve() == DEPLOY / "mcpfence.yaml"


def test_compose_config_is_valid_and_its_routes_reach_the_upstream_services() -> None:
    config = compose_config()
    for route in config.routes:
        assert route.upstream.url is not None
        url = urlsplit(route.upstream.url)
        command = SERVICES[str(url.hostname)]["command"]
        assert (REPO / command[0]).is_file()
        assert int(option(command, "--port")) == url.port
        assert option(command, "--host") == "0.0.0.0"


def test_compose_policies_are_the_packs_baked_into_the_image() -> None:
    config = compose_config()
    assert [str(p) for p in config.policy_paths] == ["/app/policies"]
    assert ("WORKDIR", "/app") in dockerfile()
    assert ("COPY", "policies ./policies") in dockerfile()


def test_mcpfence_sends_otlp_to_the_collectors_receiver() -> None:
    environment = MCPFENCE["environment"]
    endpoint = urlsplit(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
    protocol = {"http/protobuf": "http", "grpc": "grpc"}[environment["OTEL_EXPORTER_OTLP_PROTOCOL"]]
    assert endpoint.hostname == "otel-collector"
    receiver = COLLECTOR["receivers"]["otlp"]["protocols"][protocol]["endpoint"]
    assert port_of(receiver) == endpoint.port
    assert environment["OTEL_TRACES_EXPORTER"] == environment["OTEL_METRICS_EXPORTER"] == "otlp"


# The cluster: replicas behind nginx round robin, state in Redis


def test_compose_replicas_differ_only_in_their_internal_url() -> None:
    def without_url(service: dict[str, Any]) -> dict[str, Any]:
        environment = {k: v for k, v in service["environment"].items() if k != "MCPFENCE_INTERNAL_URL"}
        return {**service, "environment": environment}

    assert all(without_url(SERVICES[name]) == without_url(MCPFENCE) for name in REPLICAS)
    for name in REPLICAS:
        cluster = compose_config(name).cluster
        assert cluster is not None
        url = urlsplit(cluster.advertised_url)
        assert url.hostname == name
        assert url.port == cluster.internal_port
        assert str(url.port) in SERVICES[name]["expose"]


def test_compose_config_shares_state_through_the_redis_service() -> None:
    config = compose_config()
    assert config.cluster is not None
    url = urlsplit(config.cluster.redis_url)
    assert url.hostname == "redis"
    assert str(url.port) in SERVICES["redis"]["expose"]
    assert "redis" in MCPFENCE["depends_on"]


def test_compose_redis_persists_with_aof_on_a_named_volume() -> None:
    redis = SERVICES["redis"]
    command = redis["command"]
    assert option(command, "--appendonly") == "yes"
    assert any(v.split(":")[0] in COMPOSE["volumes"] for v in redis["volumes"])


def nginx_upstreams() -> list[str]:
    text = (DEPLOY / "nginx.conf").read_text()
    return re.findall(r"^\s*server\s+([\w.-]+:\d+)", text, flags=re.MULTILINE)


def test_nginx_balances_over_every_replica_without_stickiness() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    port = compose_config().server.port
    assert nginx_upstreams() == [f"{name}:{port}" for name in REPLICAS]
    for sticky in ("ip_hash", "hash ", "sticky", "least_conn"):
        assert sticky not in text
    assert "proxy_buffering off" in text  # SSE answers stream event by event
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["nginx"]["volumes"]}
    assert mounts["/etc/nginx/nginx.conf"] == "./nginx.conf"


def test_compose_replicas_report_readiness_from_readyz() -> None:
    assert "/readyz" in " ".join(MCPFENCE["healthcheck"]["test"])


def test_compose_route_urls_point_at_nginx() -> None:
    public = urlsplit(str(compose_config().server.public_url))
    assert f"127.0.0.1:{public.port}:8080" in SERVICES["nginx"]["ports"]


# OpenTelemetry Collector, Prometheus, Grafana


def test_collector_pipelines_use_only_defined_components() -> None:
    for pipeline in COLLECTOR["service"]["pipelines"].values():
        for section in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(section, [])) <= set(COLLECTOR.get(section, {})), section


def test_collector_sends_traces_to_jaeger() -> None:
    [exporter] = COLLECTOR["service"]["pipelines"]["traces"]["exporters"]
    host = COLLECTOR["exporters"][exporter]["endpoint"].split(":")[0]
    assert host == "jaeger"
    assert host in SERVICES


def test_prometheus_scrapes_the_collectors_metrics_endpoint() -> None:
    [job] = load("prometheus.yml")["scrape_configs"]
    [target] = job["static_configs"][0]["targets"]
    assert SERVICES["prometheus"]["volumes"][0].startswith("./prometheus.yml:")
    host, port = target.split(":")
    assert host == "otel-collector"
    assert int(port) == port_of(COLLECTOR["exporters"]["prometheus"]["endpoint"])
    assert port in SERVICES["otel-collector"]["expose"]


def test_grafana_datasources_point_at_compose_services() -> None:
    sources = load("grafana/provisioning/datasources/datasources.yaml")["datasources"]
    assert {urlsplit(s["url"]).hostname for s in sources} <= set(SERVICES)


def test_grafana_loads_dashboards_from_where_they_are_mounted() -> None:
    [provider] = load("grafana/provisioning/dashboards/dashboards.yaml")["providers"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"


def test_dashboard_panels_use_provisioned_datasources() -> None:
    sources = load("grafana/provisioning/datasources/datasources.yaml")["datasources"]
    uids = {s["uid"] for s in sources}
    assert {p["datasource"]["uid"] for p in DASHBOARD["panels"]} <= uids


def test_dashboard_shows_calls_denials_latency_and_upstream_errors() -> None:
    titles = " | ".join(p["title"].lower() for p in DASHBOARD["panels"])
    for subject in ("calls", "denials by policy", "latency percentiles", "upstream errors"):
        assert subject in titles


# Dashboard queries against what mcpfence exports


@pytest.fixture
def exported(recorded: Recorded) -> dict[str, set[str]]:
    """Prometheus sample name -> label names, scraped after exercising every instrument."""
    telemetry = recorded.telemetry
    for decision, violated in (("allow", []), ("deny", ["p"]), ("audit", ["q"])):
        with telemetry.request_span("tools/call", "t", route="r") as request:
            request.set_decision(decision, ["p", "q"], violated)
            with request.upstream_span() as upstream:
                upstream.set_error(-32603)
    telemetry.record_policy_reload(ok=True)
    with serve_asgi(telemetry.metrics_app()) as url:
        text = httpx.get(url + "/metrics").text
    samples: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, set()).update(sample.labels)
    return samples


def dashboard_queries() -> list[str]:
    queries = [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"]]
    queries += [v["definition"] for v in DASHBOARD["templating"]["list"]]
    return queries


SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\[")  # range vectors: name{...}[5m]
LABEL_VALUES = re.compile(r"label_values\((\w+),\s*(\w+)\)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def test_dashboard_queries_name_only_exported_metrics_and_labels(
    exported: dict[str, set[str]],
) -> None:
    for query in dashboard_queries():
        references = [
            (metric, {m.split("=")[0].strip(" !~") for m in matchers.split(",") if m.strip()})
            for metric, matchers in SELECTOR.findall(query)
        ] + [(metric, {label}) for metric, label in LABEL_VALUES.findall(query)]
        assert references, f"no metric in {query}"
        available = set(PROMETHEUS_LABELS)
        for metric, labels in references:
            assert metric in exported, f"{metric} is not exported by mcpfence"
            assert labels <= exported[metric] | PROMETHEUS_LABELS, f"{labels} on {metric}"
            available |= exported[metric]
        for grouping in GROUPING.findall(query):
            assert {g.strip() for g in grouping.split(",")} <= available, query


# Kubernetes


def test_k8s_has_deployment_service_and_configmaps() -> None:
    kinds = sorted(doc["kind"] for doc in k8s_documents())
    assert kinds == [
        "ConfigMap",
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Secret",
        "Service",
        "Service",
        "StatefulSet",
    ]


def test_kustomization_lists_every_manifest() -> None:
    resources = load("k8s/kustomization.yaml")["resources"]
    assert sorted(resources) == [p.name for p in k8s_manifests()]


def test_k8s_service_selects_the_deployments_pods_on_a_declared_port() -> None:
    service, deployment = k8s("Service", "mcpfence"), k8s("Deployment")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    port_names = {p["name"] for c in pod["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_k8s_deployment_mounts_config_keys_that_exist() -> None:
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "configMap" in v]
    data = k8s("ConfigMap", volume["configMap"]["name"])["data"]
    assert {item["key"] for item in volume["configMap"]["items"]} <= set(data)
    [container] = pod["containers"]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    config = option(container["args"], "--config")
    assert {f"{mount['mountPath']}/{i['path']}" for i in volume["configMap"]["items"]} >= {config}


def test_k8s_collector_endpoint_comes_from_configuration() -> None:
    [container] = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    sources = [s["configMapRef"]["name"] for s in container["envFrom"] if "configMapRef" in s]
    settings = {k: v for name in sources for k, v in k8s("ConfigMap", name)["data"].items()}
    assert urlsplit(settings["OTEL_EXPORTER_OTLP_ENDPOINT"]).port
    assert settings["OTEL_TRACES_EXPORTER"] == "otlp"


def test_k8s_config_and_policies_pass_mcpfence_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "configMap" in v]
    data = k8s("ConfigMap", volume["configMap"]["name"])["data"]
    for item in volume["configMap"]["items"]:
        (tmp_path / item["path"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / item["path"]).write_text(data[item["key"]])
    for name, value in k8s("Secret")["stringData"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POD_IP", "10.0.0.7")  # from the downward API
    out = io.StringIO()
    assert policy_cli.check([tmp_path / "mcpfence.yaml"], out) == 0, out.getvalue()
    assert "1 policy" in out.getvalue()


def k8s_config() -> Any:
    pod = k8s("Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if "configMap" in v]
    return yaml.safe_load(k8s("ConfigMap", volume["configMap"]["name"])["data"]["mcpfence.yaml"])


def test_k8s_replicas_share_redis_and_keep_no_per_pod_sqlite() -> None:
    deployment = k8s("Deployment")
    assert deployment["spec"]["replicas"] > 1
    config = k8s_config()
    assert "storage" not in config
    url = urlsplit(config["cluster"]["redis_url"])
    redis_service = k8s("Service", url.hostname)
    assert url.port in {p["port"] for p in redis_service["spec"]["ports"]}
    pod = deployment["spec"]["template"]["spec"]
    assert not any("emptyDir" in v or "persistentVolumeClaim" in v for v in pod["volumes"])


def test_k8s_redis_persists_with_aof_on_a_volume_claim() -> None:
    redis = k8s("StatefulSet", "mcpfence-redis")
    [container] = redis["spec"]["template"]["spec"]["containers"]
    assert option(container["args"], "--appendonly") == "yes"
    [claim] = redis["spec"]["volumeClaimTemplates"]
    assert {m["name"] for m in container["volumeMounts"]} == {claim["metadata"]["name"]}
    assert k8s("Service", "mcpfence-redis")["spec"]["selector"].items() <= (
        redis["spec"]["template"]["metadata"]["labels"].items()
    )


def test_k8s_pods_advertise_their_own_internal_address() -> None:
    [container] = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    pod_ip = [e for e in container["env"] if e["name"] == "POD_IP"]
    assert pod_ip[0]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    cluster = k8s_config()["cluster"]
    assert cluster["internal_url"] == f"http://${{POD_IP}}:{cluster['internal_port']}"
    assert cluster["internal_port"] in {p["containerPort"] for p in container["ports"]}
    assert "MCPFENCE_CLUSTER_SECRET" in k8s("Secret")["stringData"]


def test_k8s_probes_use_readyz_and_healthz() -> None:
    [container] = k8s("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_k8s_disruption_budget_keeps_a_replica_of_the_deployment() -> None:
    budget, deployment = k8s("PodDisruptionBudget"), k8s("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]
