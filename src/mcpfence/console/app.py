"""The compliance console: server-rendered pages under ``/ui/`` on the admin listener.

Plain HTML forms and Jinja2 templates, no JavaScript. Every page needs a signed-in
session (see :mod:`mcpfence.console.auth`); every POST needs the form's CSRF token.
Reading pages never change state, so their filters are GET forms (bookmarkable).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mcpfence.config import Config
from mcpfence.console.auth import (
    LOGIN_COOKIE,
    LOGIN_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    ConsoleAuth,
    Session,
)
from mcpfence.console.chart import svg
from mcpfence.console.decisions import DecisionStore, Filters, Row
from mcpfence.console.policies import policy_views
from mcpfence.console.whatif import NEW_FILE, what_if
from mcpfence.policy import Decision, PolicySet, ToolCall, Violation, denial_result
from mcpfence.policy.loader import policy_files
from mcpfence.policy_cli import policy_verdict
from mcpfence.replay.records import parse_time
from mcpfence.telemetry.sealing import sealer

PAGE_SIZE = 50
MAX_CANDIDATE_BYTES = 1 << 20
_DECISIONS = ("allow", "mutate", "audit", "deny")
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it browsers send ``Origin: null`` on the console's own forms,
    # which the admin listener's DNS-rebinding check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class ReloadStatus:
    """The last policy load: when, and the error that kept the previous set, if any."""

    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    failed_at: datetime | None = None
    error: str = ""

    def loaded(self) -> None:
        self.loaded_at, self.failed_at, self.error = datetime.now(UTC), None, ""

    def failed(self, error: str) -> None:
        self.failed_at, self.error = datetime.now(UTC), error


@dataclass
class ConsoleContext:
    """What the console reads from the running proxy."""

    config: Config
    policies: Callable[[], PolicySet]
    reloads: ReloadStatus
    decisions: DecisionStore


Handler = Callable[[Request, Session], Awaitable[Response]]


class Console:
    """The pages; :meth:`app` builds the ASGI app to mount at ``/ui``."""

    def __init__(self, context: ConsoleContext, admin_token: str) -> None:
        self.context = context
        self.auth = ConsoleAuth(admin_token)
        self.sealer = sealer(context.config.decision_log)
        self.templates = Environment(
            loader=PackageLoader("mcpfence.console", "templates"),
            autoescape=select_autoescape(default=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def app(self) -> Starlette:
        static = StaticFiles(directory=Path(__file__).parent / "static")
        return Starlette(routes=[
            Route("/", self._signed_in(self.home)),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self._signed_in(self.logout, post=True), methods=["POST"]),
            Route("/policies", self._signed_in(self.policies)),
            Route("/decisions", self._signed_in(self.decisions)),
            Route("/what-if", self._signed_in(self.what_if_form), methods=["GET"]),
            Route("/what-if", self._signed_in(self.what_if, post=True), methods=["POST"]),
            Route("/explain", self._signed_in(self.explain_form), methods=["GET"]),
            Route("/explain", self._signed_in(self.explain, post=True), methods=["POST"]),
            Mount("/static", static),
        ])

    # -- plumbing ------------------------------------------------------------

    def _signed_in(self, handler: Handler, post: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.auth.session(request.cookies.get(SESSION_COOKIE))
            if session is None:
                return RedirectResponse("/ui/login", status_code=303)
            if post:
                form = await request.form(max_part_size=MAX_CANDIDATE_BYTES)
                presented = form.get("csrf")
                if not self.auth.csrf_ok(session, presented if isinstance(presented, str) else None):
                    return self._page("error.html", None, status=403,
                                      message="This form has expired or did not come from the console.")
            return await handler(request, session)

        return endpoint

    def _page(self, template: str, session: Session | None, status: int = 200, **values: Any) -> HTMLResponse:
        csrf = self.auth.csrf(session) if session is not None else values.pop("csrf", "")
        signed_in = session is not None
        html = self.templates.get_template(template).render(csrf=csrf, signed_in=signed_in, **values)
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    # -- sign-in -------------------------------------------------------------

    async def login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        pre = self.auth.new_cookie(LOGIN_SECONDS)
        login = self.auth.session(pre)
        assert login is not None
        response = self._page("login.html", None, status=status, csrf=self.auth.csrf(login), error=error)
        _set_cookie(response, LOGIN_COOKIE, pre, LOGIN_SECONDS)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        login = self.auth.session(request.cookies.get(LOGIN_COOKIE))
        csrf, token = form.get("csrf"), form.get("token")
        if not self.auth.csrf_ok(login, csrf if isinstance(csrf, str) else None):
            return await self.login_form(request, "The sign-in form expired; please try again.", 403)
        if not isinstance(token, str) or not self.auth.token_matches(token):
            return await self.login_form(request, "That is not the admin token.", 401)
        response = RedirectResponse("/ui/decisions", status_code=303)
        _set_cookie(response, SESSION_COOKIE, self.auth.new_cookie(SESSION_SECONDS), SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path="/ui")
        return response

    async def logout(self, request: Request, session: Session) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/ui")
        return response

    async def home(self, request: Request, session: Session) -> Response:
        return RedirectResponse("/ui/decisions", status_code=303)

    # -- pages -----------------------------------------------------------------

    async def policies(self, request: Request, session: Session) -> Response:
        loaded = self.context.policies()
        views, problems = await run_in_threadpool(policy_views, self.context.config.policy_paths, loaded)
        return self._page("policies.html", session, page="policies", policies=views, problems=problems,
                          revision=loaded.revision, reloads=self.context.reloads)

    async def decisions(self, request: Request, session: Session) -> Response:
        query = request.query_params
        try:
            filters = Filters(
                since=_time(query.get("since", "")),
                until=_time(query.get("until", "")),
                **{k: query.get(k, "") for k in ("route", "tool", "decision", "policy", "client")},
            )
            offset = max(int(query.get("offset", "0") or 0), 0)
        except ValueError:
            return self._page("error.html", session, status=400, message="A filter value is not understood.")
        store = self.context.decisions
        page = await run_in_threadpool(store.page, filters, PAGE_SIZE, offset)
        series = await run_in_threadpool(store.series, filters)
        chart, legend = svg(series, "Decisions per policy over time")
        kept = {k: v for k, v in query.items() if k != "offset" and v}
        return self._page(
            "decisions.html", session, page="decisions", rows=[self._row(r) for r in page.rows],
            total=page.total, offset=offset, size=PAGE_SIZE, query=query, choices=page.choices,
            decisions=_DECISIONS, chart=chart, legend=legend, series=series,
            previous=urlencode({**kept, "offset": max(offset - PAGE_SIZE, 0)}),
            next=urlencode({**kept, "offset": offset + PAGE_SIZE}),
            logging=self.context.decisions.has_log,
        )

    def _row(self, row: Row) -> dict[str, Any]:
        template = self.context.config.console.trace_url
        trace = template.replace("{trace_id}", quote(row.trace_id)) if template and row.trace_id else ""
        return {"row": row, "trace_url": trace, "model_saw": _model_saw(row)}

    async def what_if_form(self, request: Request, session: Session) -> Response:
        return self._page("what_if.html", session, page="what-if", files=self._policy_files(),
                          form={"replaces": NEW_FILE, "text": "", "since": ""}, result=None)

    async def what_if(self, request: Request, session: Session) -> Response:
        form = await request.form(max_part_size=MAX_CANDIDATE_BYTES)
        files = self._policy_files()
        upload = form.get("file")
        text = str(form.get("text") or "")
        name = "candidate.yaml"
        if isinstance(upload, UploadFile) and upload.filename:
            text = (await upload.read()).decode("utf-8", errors="replace")
            name = Path(upload.filename).name
        replaces = str(form.get("replaces") or NEW_FILE)
        values = {"replaces": replaces, "text": text, "since": str(form.get("since") or "")}
        if replaces != NEW_FILE and replaces not in files:
            replaces = NEW_FILE
        try:
            since = _time(values["since"])
        except ValueError:
            return self._page("error.html", session, status=400, message="“Since” is not a date and time.")
        log = self.context.decisions.log
        result = await run_in_threadpool(
            what_if, text, name, replaces, [Path(f) for f in files], log, self.sealer, since
        )
        return self._page("what_if.html", session, page="what-if", files=files, form=values, result=result)

    def _policy_files(self) -> list[str]:
        return [str(path) for path in policy_files(self.context.config.policy_paths)[0]]

    async def explain_form(self, request: Request, session: Session) -> Response:
        return self._page("explain.html", session, page="explain", routes=self._routes(),
                          form={"route": "", "tool": "", "args": "{}"}, result=None, error="")

    async def explain(self, request: Request, session: Session) -> Response:
        form = await request.form()
        values = {k: str(form.get(k) or "") for k in ("route", "tool", "args")}
        args, problem = _arguments(values["args"])
        if not values["tool"]:
            problem = problem or "Name the tool to explain."
        result = None
        if not problem:
            call = ToolCall(route=values["route"], tool=values["tool"], args=args)
            result = _explained(self.context.policies().decide(call))
        return self._page("explain.html", session, page="explain", routes=self._routes(), form=values,
                          result=result, error=problem, status=400 if problem else 200)

    def _routes(self) -> list[str]:
        return [route.name for route in self.context.config.routes]


def _arguments(text: str) -> tuple[dict[str, Any], str]:
    """The explain form's arguments, or a message saying where the JSON is wrong."""
    try:
        args = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        return {}, f"Arguments are not JSON: {error.msg} (line {error.lineno}, column {error.colno})."
    if not isinstance(args, dict):
        return {}, 'Arguments must be a JSON object, like {"id": "1"}.'
    return args, ""


def _explained(decision: Decision) -> dict[str, Any]:
    return {
        "decision": decision.decision,
        "args": json.dumps(decision.args, indent=2, ensure_ascii=False),
        "policies": [(name, policy_verdict(name, decision)) for name in decision.matched],
        "violations": decision.violations,
        "mutations": decision.mutations,
        "model_saw": _text(denial_result(decision)) if decision.decision == "deny" else "",
    }


def _model_saw(row: Row) -> str:
    """The tool error a denied call was answered with (audit violations were never shown)."""
    if row.decision != "deny":
        return ""
    violations = tuple(Violation(v["policy"], v["message"]) for v in row.violations)
    return _text(denial_result(Decision("deny", {}, violations)))


def _text(result: dict[str, Any]) -> str:
    return "\n".join(block["text"] for block in result["content"])


def _time(text: str) -> datetime | None:
    return parse_time(text) if text else None


def _set_cookie(response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(name, value, max_age=seconds, path="/ui", httponly=True, samesite="strict")
