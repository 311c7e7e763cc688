"""The admin API (docs/reference/access.md): token routes, API tokens and the loaded policy set.

It listens on its own loopback port behind a bearer token from
``MCPFENCE_ADMIN_TOKEN``. A token route's ``upstream`` names a route of the config
file: the new route reuses that upstream's URL, transport and credentials, so no
secret or arbitrary URL ever travels through this API.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from mcpfence.access.exposure import TOOL_KINDS, Exposure, MethodName
from mcpfence.access.store import ApiToken, Store, StoreConflict, TokenRoute, utcnow
from mcpfence.access.tokens import (
    ROUTE_PATH_PREFIX,
    bearer_token,
    hash_token,
    new_api_token,
    new_route_token,
)
from mcpfence.admin.expiry import RouteRemoved
from mcpfence.cluster import SharedStateUnavailable
from mcpfence.transport.http import SecretGate
from mcpfence.urls import redact_urls

ADMIN_TOKEN_ENV = "MCPFENCE_ADMIN_TOKEN"

ToolInfo = tuple[str, Mapping[str, Any] | None]
"""A tool as :class:`Exposure` judges it: its name and wire-format annotations."""
ListTools = Callable[[str], Awaitable[Sequence[ToolInfo]]]
"""Given a config route's name, its upstream's tools as (name, wire annotations)."""

_NAME = r"^[a-z0-9-]+$"


@dataclass(frozen=True)
class PolicySetSummary:
    """What ``GET /admin/policies`` shows: the content hash and the policy names."""

    revision: str
    policies: Sequence[str]


class AdminTokenMissing(RuntimeError):
    """The admin API never runs unauthenticated."""


class ApiError(Exception):
    """A refusal raised anywhere in a handler, answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Filters(_Body):
    methods: tuple[MethodName, ...] = TOOL_KINDS
    tags: tuple[str, ...] = ()


class _RouteCreate(_Body):
    name: str = Field(pattern=_NAME)
    upstream: str
    config: _Filters = _Filters()
    expires_at: datetime | None = None
    require_api_token_auth: bool = False


class _RoutePatch(_Body):
    name: str | None = Field(None, pattern=_NAME)
    upstream: str | None = None
    config: _Filters | None = None
    expires_at: datetime | None = None
    require_api_token_auth: bool | None = None


class _TokenCreate(_Body):
    name: str = Field(pattern=_NAME)


class _BearerAuth(SecretGate):
    """Refuses any request without the admin token."""

    def presented(self, scope: Scope) -> bytes | None:
        token = bearer_token(Headers(scope=scope).get("authorization"))
        return token.encode() if token is not None else None

    async def refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(401, "missing or wrong admin token")
        response.headers["WWW-Authenticate"] = 'Bearer realm="mcpfence-admin"'
        await response(scope, receive, send)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(exc.status, exc.message)


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    return _error(503, str(exc))


async def _parse(request: Request, model: type[_Body]) -> Any:
    try:
        return model.model_validate(json.loads(await request.body()))
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not JSON: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise ApiError(400, problems) from None


def route_json(route: TokenRoute) -> dict[str, Any]:
    """A route as the API shows it: the ``config`` block as it was given, no token hash."""
    return {
        "id": route.id,
        "name": route.name,
        "upstream": route.upstream,
        "config": {"methods": list(route.methods), "tags": list(route.tags)},
        "expires_at": route.expires_at.isoformat() if route.expires_at else None,
        "require_api_token_auth": route.require_api_token_auth,
        "created_at": route.created_at.isoformat(),
    }


@dataclass
class _AdminApi:
    """The endpoints' handlers; the fields are :func:`create_admin_app`'s arguments."""

    store: Store
    public_url: str
    upstreams: Collection[str]
    tag_globs: Mapping[str, Sequence[str]]
    list_tools: ListTools
    policies: Callable[[], PolicySetSummary]
    on_route_removed: RouteRemoved | None

    def __post_init__(self) -> None:
        self.public_url = self.public_url.rstrip("/")

    # -- routes --

    async def create_route(self, request: Request) -> Response:
        body: _RouteCreate = await _parse(request, _RouteCreate)
        token = new_route_token()
        route = TokenRoute(
            id=uuid.uuid4().hex,
            name=body.name,
            token_sha256=hash_token(token),
            upstream=body.upstream,
            methods=body.config.methods,
            tags=body.config.tags,
            expires_at=_aware(body.expires_at),
            require_api_token_auth=body.require_api_token_auth,
            created_at=utcnow(),
        )
        await self._check(route)
        await self._save(self.store.add_route(route))
        url = f"{self.public_url}{ROUTE_PATH_PREFIX}{token}"
        return JSONResponse({**route_json(route), "url": url}, status_code=201)

    async def list_routes(self, request: Request) -> Response:
        return JSONResponse({"routes": [route_json(r) for r in self.store.routes()]})

    async def get_route(self, request: Request) -> Response:
        return JSONResponse(route_json(self._route(request)))

    async def patch_route(self, request: Request) -> Response:
        current = self._route(request)
        body: _RoutePatch = await _parse(request, _RoutePatch)
        given = body.model_fields_set
        changes: dict[str, Any] = {
            key: getattr(body, key)
            for key in ("name", "upstream", "require_api_token_auth")
            if key in given and getattr(body, key) is not None
        }
        if body.config is not None:
            changes.update(methods=body.config.methods, tags=body.config.tags)
        if "expires_at" in given:
            changes["expires_at"] = _aware(body.expires_at)
        route = replace(current, **changes)
        await self._check(route, current)
        if not await self._save(self.store.update_route(route)):
            raise ApiError(404, f"no route {current.id}")
        return JSONResponse(route_json(route))

    async def delete_route(self, request: Request) -> Response:
        route_id = request.path_params["route_id"]
        if not await self.store.delete_route(route_id):
            raise ApiError(404, f"no route {route_id}")
        if self.on_route_removed is not None:
            await self.on_route_removed(route_id)
        return Response(status_code=204)

    def _route(self, request: Request) -> TokenRoute:
        route_id = request.path_params["route_id"]
        route = self.store.route(route_id)
        if route is None:
            raise ApiError(404, f"no route {route_id}")
        return route

    async def _check(self, route: TokenRoute, current: TokenRoute | None = None) -> None:
        """Validation shared by create and patch; tools are listed only if filters changed."""
        if route.expires_at is not None and route.expires_at <= utcnow():
            raise ApiError(400, "expires_at must be in the future")
        if route.name in self.upstreams or any(
            r.name == route.name and r.id != route.id for r in self.store.routes()
        ):
            raise ApiError(409, f"a route named {route.name!r} already exists")
        if route.upstream not in self.upstreams:
            known = ", ".join(sorted(self.upstreams)) or "none"
            raise ApiError(400, f"upstream must name a route of the config file (known: {known})")
        try:
            exposure = Exposure.from_filters(route.methods, route.tags, self.tag_globs)
        except ValueError as exc:
            raise ApiError(400, f"config: {exc}") from None
        unchanged = current is not None and (current.upstream, current.methods, current.tags) == (
            route.upstream,
            route.methods,
            route.tags,
        )
        if unchanged:
            return
        try:
            tools = await self.list_tools(route.upstream)
        except Exception as exc:
            reason = redact_urls(str(exc))
            raise ApiError(502, f"could not list the tools of {route.upstream!r}: {reason}") from None
        if not any(exposure.allows(name, annotations) for name, annotations in tools):
            raise ApiError(400, f"config leaves no tool of {route.upstream!r} exposed")

    @staticmethod
    async def _save(write: Awaitable[Any]) -> Any:
        try:
            return await write
        except StoreConflict:
            raise ApiError(409, "a route or token with that name already exists") from None

    # -- API tokens and policies --

    async def create_token(self, request: Request) -> Response:
        body: _TokenCreate = await _parse(request, _TokenCreate)
        if any(t.name == body.name for t in self.store.api_tokens()):
            raise ApiError(409, f"an API token named {body.name!r} already exists")
        token = new_api_token()
        await self._save(self.store.add_api_token(ApiToken(body.name, hash_token(token), utcnow())))
        return JSONResponse({"name": body.name, "token": token}, status_code=201)

    async def list_tokens(self, request: Request) -> Response:
        tokens = [{"name": t.name, "created_at": t.created_at.isoformat()} for t in self.store.api_tokens()]
        return JSONResponse({"tokens": tokens})

    async def delete_token(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not await self.store.delete_api_token(name):
            raise ApiError(404, f"no API token {name!r}")
        return Response(status_code=204)

    async def get_policies(self, request: Request) -> Response:
        summary = self.policies()
        return JSONResponse({"revision": summary.revision, "policies": list(summary.policies)})


def _aware(moment: datetime | None) -> datetime | None:
    """Times without an offset are UTC; stored times are always timezone-aware."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def create_admin_app(
    store: Store,
    *,
    public_url: str,
    upstreams: Collection[str],
    tag_globs: Mapping[str, Sequence[str]],
    list_tools: ListTools,
    policies: Callable[[], PolicySetSummary],
    on_route_removed: RouteRemoved | None = None,
    admin_token: str | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The admin ASGI app; ``extra_routes`` (e.g. ``/metrics``) sit outside ``/admin`` auth.

    ``public_url`` is the proxy listener's base URL, used to print route URLs;
    ``upstreams`` are the config routes a token route may reuse. Raises
    :class:`AdminTokenMissing` when neither ``admin_token`` nor the environment
    variable provides a token.
    """
    token = admin_token or os.environ.get(ADMIN_TOKEN_ENV)
    if not token:
        raise AdminTokenMissing(f"the admin API needs {ADMIN_TOKEN_ENV} to be set")
    api = _AdminApi(store, public_url, upstreams, tag_globs, list_tools, policies, on_route_removed)
    admin_routes = [
        Route("/routes", api.create_route, methods=["POST"]),
        Route("/routes", api.list_routes, methods=["GET"]),
        Route("/routes/{route_id}", api.get_route, methods=["GET"]),
        Route("/routes/{route_id}", api.patch_route, methods=["PATCH"]),
        Route("/routes/{route_id}", api.delete_route, methods=["DELETE"]),
        Route("/tokens", api.create_token, methods=["POST"]),
        Route("/tokens", api.list_tokens, methods=["GET"]),
        Route("/tokens/{name}", api.delete_token, methods=["DELETE"]),
        Route("/policies", api.get_policies, methods=["GET"]),
    ]
    return Starlette(
        routes=[
            Mount("/admin", routes=admin_routes, middleware=[Middleware(_BearerAuth, secret=token)]),
            *extra_routes,
        ],
        exception_handlers={ApiError: _api_error, SharedStateUnavailable: _store_unavailable},
    )
