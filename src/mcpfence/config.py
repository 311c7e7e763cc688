"""The config file (docs/reference/config.md): strict models, ``${VAR}`` expansion, positioned errors.

Unknown keys and bad types are errors, and an unset ``${VAR}`` is an error rather
than an empty string: a proxy that silently drops a credential or a setting is
worse than one that refuses to start.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mcpfence.access.exposure import MethodName
from mcpfence.yamlsource import Diagnostic, Loc, SourceError, YamlDocument, load_yaml_documents

REDIS_URL_ENV = "MCPFENCE_REDIS_URL"
"""Turns cluster mode on when the config file has no ``cluster`` key."""
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(Exception):
    """The config or the environment cannot be used to start (not tied to a file position)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, gt=0)
    admin_host: str = "127.0.0.1"
    admin_port: int | None = Field(None, ge=0, le=65535)
    allowed_origins: tuple[str, ...] = ()
    # The base of the route URLs the admin API returns (behind a load balancer: its URL).
    public_url: str | None = Field(None, pattern=r"^https?://")


class DecisionLogConfig(_Strict):
    path: str | None = None
    include_arguments: bool = False
    record_arguments: bool = False  # keep what `mcpfence replay` needs (see docs/how-to/replay.md)
    key_env: str | None = None  # the environment variable holding a Fernet key for those fields
    redact: tuple[str, ...] = ()
    max_bytes: int = Field(100 * 1024 * 1024, gt=0)
    backups: int = Field(5, ge=0)


class TelemetryConfig(_Strict):
    service_name: str = "mcpfence"


class ConsoleConfig(_Strict):
    # Link from each decision to its trace, e.g. http://127.0.0.1:16686/trace/{trace_id} (Jaeger).
    trace_url: str | None = None


class StorageConfig(_Strict):
    path: str = "mcpfence.db"


class ClusterConfig(_Strict):
    """Shared state in Redis: every replica and worker becomes interchangeable."""

    redis_url: str = Field(pattern=r"^(redis|rediss|unix)://")
    # Replica-to-replica forwarding of the sessions mcpfence hosts (needs MCPFENCE_CLUSTER_SECRET).
    internal_port: int | None = Field(None, ge=0, le=65535)
    internal_host: str = "127.0.0.1"
    internal_url: str | None = Field(None, pattern=r"^https?://")
    """How other replicas reach this one; default ``http://{internal_host}:{internal_port}``."""

    @property
    def advertised_url(self) -> str:
        return self.internal_url or f"http://{self.internal_host}:{self.internal_port}"


class UpstreamConfig(_Strict):
    url: str | None = None
    command: tuple[str, ...] | None = None
    transport: Literal["streamable-http", "sse", "stdio"] | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    shared: bool = False
    timeout_seconds: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_target(self) -> UpstreamConfig:
        if (self.url is None) == (self.command is None):
            raise ValueError("upstream needs exactly one of url or command")
        if self.url is not None and not re.match(r"^https?://", self.url):
            raise ValueError("upstream.url must be an http:// or https:// URL")
        if self.command is not None and not self.command:
            raise ValueError("upstream.command must not be empty")
        if (self.command is not None) != (self.kind == "stdio"):
            raise ValueError("upstream.command goes with transport stdio, upstream.url with the HTTP ones")
        return self

    @property
    def kind(self) -> Literal["streamable-http", "sse", "stdio"]:
        """The upstream transport, inferred when not given."""
        if self.transport is not None:
            return self.transport
        return "stdio" if self.command is not None else "streamable-http"


class ExposeConfig(_Strict):
    methods: tuple[MethodName, ...] = ("read", "write", "custom")
    tags: tuple[str, ...] = ()


class RateLimitConfig(_Strict):
    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)
    key: Literal["session", "client", "route"] = "session"
    per_tool: bool = False


class LimitsConfig(_Strict):
    """What one route's clients may hold open (docs/reference/transports.md, "Resource bounds")."""

    connections: int = Field(256, gt=1)
    # Relayed GET streams at once; None: three quarters of the connections (the rest serve POSTs).
    streams: int | None = Field(None, gt=0)
    streams_per_client: int = Field(32, gt=0)
    streams_per_session: int = Field(1, gt=0)
    stream_idle_seconds: float = Field(600.0, gt=0)
    sessions: int = Field(100, gt=0)
    session_idle_seconds: float = Field(1800.0, gt=0)

    @model_validator(mode="after")
    def _headroom(self) -> LimitsConfig:
        if self.streams is not None and self.streams >= self.connections:
            raise ValueError("limits.streams must be below limits.connections: POSTs need connections too")
        return self

    @property
    def stream_cap(self) -> int:
        return self.streams if self.streams is not None else self.connections * 3 // 4


class RouteConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    path: str = Field(pattern=r"^/[A-Za-z0-9._~/-]*$")
    upstream: UpstreamConfig
    expose: ExposeConfig | None = None
    rate_limit: RateLimitConfig | None = None
    limits: LimitsConfig = LimitsConfig()
    # The built-in check of every call's arguments against the tool's inputSchema.
    input_schema: Literal["enforce", "audit", "off"] = "enforce"
    # false: the route's own path answers 404; only token routes built on it serve it.
    public: bool = True

    @model_validator(mode="after")
    def _reachable(self) -> RouteConfig:
        if not self.public and self.upstream.url is None:
            raise ValueError("public: false needs an HTTP upstream: token routes cannot use stdio")
        return self


class Config(_Strict):
    server: ServerConfig = ServerConfig()
    policies: tuple[str, ...] = ()
    decision_log: DecisionLogConfig = DecisionLogConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    storage: StorageConfig = StorageConfig()
    console: ConsoleConfig = ConsoleConfig()
    cluster: ClusterConfig | None = None
    tags: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    routes: tuple[RouteConfig, ...] = ()

    # Where the file lives: relative paths in it are resolved against this folder.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _unique_routes(self) -> Config:
        for attribute in ("name", "path"):
            values = [getattr(route, attribute) for route in self.routes]
            duplicates = sorted({v for v in values if values.count(v) > 1})
            if duplicates:
                raise ValueError(f"route {attribute}s must be unique: {', '.join(duplicates)}")
        for route in self.routes:
            for tag in route.expose.tags if route.expose else ():
                if tag not in self.tags:
                    raise ValueError(f"route {route.name!r} names tag {tag!r}, not defined in tags")
        return self

    @property
    def policy_paths(self) -> list[Path]:
        return [self.resolve(p) for p in self.policies]

    def resolve(self, path: str) -> Path:
        """A path from the file, relative to the file's folder."""
        return (self.base_dir / path).resolve()


def _expand(value: Any, loc: Loc, env: Mapping[str, str], doc: YamlDocument) -> Any:
    """Replace ``${VAR}`` in every string; an unset variable is a diagnostic."""
    if isinstance(value, dict):
        return {k: _expand(v, (*loc, k), env, doc) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*loc, i), env, doc) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                key = ".".join(str(part) for part in loc)
                raise SourceError([doc.diagnostic(loc, f"{key}: environment variable {name} is not set")])
            return env[name]

        return _ENV_REF.sub(substitute, value)
    return value


def validation_diagnostics(doc: YamlDocument, error: ValidationError) -> list[Diagnostic]:
    """Turn pydantic errors into ``FILE:LINE:COL: key: message`` diagnostics."""
    diagnostics = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(part) for part in loc) or "(document)"
        message = item["msg"].removeprefix("Value error, ")
        unknown = item["type"] == "extra_forbidden"
        if unknown:
            message = "unknown key"
        diagnostics.append(doc.diagnostic(loc, f"{key}: {message}", key=unknown))
    return diagnostics


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate a config file; raise :class:`SourceError` with every problem."""
    documents = load_yaml_documents(path)
    if len(documents) != 1 or not isinstance(documents[0].data, dict):
        raise SourceError([Diagnostic(str(path), 1, 1, "a config file holds one YAML mapping")])
    doc = documents[0]
    env = os.environ if env is None else env
    data = _expand(doc.data, (), env, doc)
    if REDIS_URL_ENV in env and "cluster" not in data:
        data = {**data, "cluster": {"redis_url": env[REDIS_URL_ENV]}}
    try:
        return Config.model_validate({**data, "base_dir": path.resolve().parent})
    except ValidationError as exc:
        raise SourceError(validation_diagnostics(doc, exc)) from None
