"""A Postmark-like MCP server for demos and tests: sends, templates, bounces and delivery stats,
in memory and seeded with realistic data.

It behaves like the real API, footguns included, because those are what mcpfence's
shipped policies guard against:

- A send without ``MessageStream`` goes to ``outbound`` (transactional), whatever it
  is: a newsletter sent that way rides the transactional stream.
- Any template can be sent on any stream.
- Bounce activation reactivates a hard bounce for a mailbox that does not exist.
- Over its request budget the HTTP layer answers 429 with ``X-RateLimit-*`` and
  ``Retry-After`` headers.

Tool names and arguments follow the managed-MCP naming (``create_a_postmark_email``...).
Tests inject a :class:`PostmarkStore` to inspect what the upstream recorded.
"""

from __future__ import annotations

import re
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NotRequired

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field
from typing_extensions import TypedDict

if not __package__:  # run as `python examples/upstreams/postmark.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from examples.upstreams.common import report_progress, run, upstream_parser

DEFAULT_STREAM = "outbound"
# What Postmark answers over its request budget (HTTP 429).
OVER_BUDGET = b'{"ErrorCode": 429, "Message": "Rate limit exceeded. Retry after the reset time."}'
MAX_RECIPIENTS = 50
MAX_BATCH = 500

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=True)
SEND = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
ACTIVATE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)

# --------------------------------------------------------------------------- state


class PostmarkError(ToolError):
    """An API error, worded as Postmark words it (``ErrorCode``, ``Message``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Postmark ErrorCode {code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Template:
    template_id: int
    alias: str
    subject: str
    html_body: str
    text_body: str

    @property
    def variables(self) -> set[str]:
        """Top-level names the template's ``{{ mustachio }}`` placeholders read."""
        found = re.findall(r"{{\s*[#^/]?\s*([A-Za-z_][\w]*)", self.subject + self.html_body + self.text_body)
        return set(found)

    def render(self, part: str, model: dict[str, Any]) -> str:
        return re.sub(r"{{\s*([A-Za-z_]\w*)\s*}}", lambda m: str(model.get(m.group(1), "")), part)


@dataclass
class Bounce:
    bounce_id: int
    type: str  # HardBounce | SoftBounce | SpamComplaint | Transient ...
    email: str
    stream: str
    description: str
    details: str
    bounced_at: str
    inactive: bool
    can_activate: bool
    dump: str | None = None
    subject: str = ""
    message_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class PostmarkStore:
    """Everything the server knows; tests read it to see what a call really did."""

    streams: dict[str, str] = field(default_factory=dict)  # stream id -> MessageStreamType
    templates: dict[int, Template] = field(default_factory=dict)
    bounces: dict[int, Bounce] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)  # every accepted message, as sent
    activations: list[int] = field(default_factory=list)

    @classmethod
    def seeded(cls) -> PostmarkStore:
        store = cls()
        _seed(store)
        return store

    def template(self, template_id: int | None, alias: str | None) -> Template:
        if (template_id is None) == (alias is None):
            raise PostmarkError(1101, "Send exactly one of TemplateId or TemplateAlias.")
        for template in self.templates.values():
            if template.template_id == template_id or template.alias == alias:
                return template
        raise PostmarkError(1101, f"Template not found: {template_id if alias is None else alias}")

    def bounce(self, bounce_id: int) -> Bounce:
        if bounce_id not in self.bounces:
            raise PostmarkError(701, f"Bounce {bounce_id} was not found.")
        return self.bounces[bounce_id]

    def inactive_on(self, stream: str) -> set[str]:
        return {b.email.lower() for b in self.bounces.values() if b.inactive and b.stream == stream}

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        """Accept one message as Postmark does, record it, and answer like /email."""
        stream = message.get("MessageStream") or DEFAULT_STREAM
        if stream not in self.streams:
            raise PostmarkError(1235, f"The message stream for the provided 'ID' ({stream}) was not found.")
        if not message.get("From"):
            raise PostmarkError(300, "Invalid 'From' address: it is required.")
        recipients = [a for key in ("To", "Cc", "Bcc") for a in _addresses(message.get(key))]
        if not recipients:
            raise PostmarkError(300, "Provide at least one recipient in To, Cc or Bcc.")
        if len(recipients) > MAX_RECIPIENTS:
            raise PostmarkError(300, f"Maximum of {MAX_RECIPIENTS} recipients (To, Cc and Bcc) per message.")
        if not message.get("Subject"):
            raise PostmarkError(300, "Provide a Subject.")
        if not (message.get("HtmlBody") or message.get("TextBody")):
            raise PostmarkError(300, "Provide either email TextBody or HtmlBody or both.")
        if all(a.lower() in self.inactive_on(stream) for a in recipients):
            raise PostmarkError(406, "You tried to send to recipient(s) that have been marked as inactive.")
        record = {**message, "MessageStream": stream, "MessageID": str(uuid.uuid4()), "SubmittedAt": _now()}
        self.sent.append(record)
        return {
            "To": message.get("To"),
            "SubmittedAt": record["SubmittedAt"],
            "MessageID": record["MessageID"],
            "ErrorCode": 0,
            "Message": "OK",
        }


def _addresses(value: str | None) -> list[str]:
    return [a.strip() for a in (value or "").split(",") if a.strip()]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def bounce_json(bounce: Bounce) -> dict[str, Any]:
    return {
        "ID": bounce.bounce_id,
        "Type": bounce.type,
        "MessageID": bounce.message_id,
        "MessageStream": bounce.stream,
        "Description": bounce.description,
        "Details": bounce.details,
        "Email": bounce.email,
        "BouncedAt": bounce.bounced_at,
        "DumpAvailable": bounce.dump is not None,
        "Inactive": bounce.inactive,
        "CanActivate": bounce.can_activate,
        "Subject": bounce.subject,
    }


# --------------------------------------------------------------------------- tool arguments


class Header(TypedDict):
    Name: str
    Value: str


class EmailMessage(TypedDict):
    From: str
    To: str
    Subject: NotRequired[str]
    HtmlBody: NotRequired[str]
    TextBody: NotRequired[str]
    Cc: NotRequired[str]
    Bcc: NotRequired[str]
    ReplyTo: NotRequired[str]
    Tag: NotRequired[str]
    Headers: NotRequired[list[Header]]
    TrackOpens: NotRequired[bool]
    TrackLinks: NotRequired[str]
    Metadata: NotRequired[dict[str, str]]
    MessageStream: NotRequired[str]


FromArg = Annotated[str, Field(description="Sender, e.g. 'Acme <notifications@acme.example>'.")]
ToArg = Annotated[str, Field(description="Recipients, comma separated (at most 50 with Cc and Bcc).")]
StreamArg = Annotated[
    str | None,
    Field(description="Message stream: 'outbound' (transactional) or 'broadcast'. Omitted means outbound."),
]
OptionalText = str | None
HeadersArg = Annotated[list[Header] | None, Field(description="Extra headers, e.g. List-Unsubscribe.")]


_API_FIELDS = frozenset(EmailMessage.__annotations__) | {"TemplateId", "TemplateAlias", "TemplateModel"}


def _message(arguments: dict[str, Any]) -> dict[str, Any]:
    """The message as the API receives it: Postmark's fields that were sent, nothing else."""
    return {key: value for key, value in arguments.items() if key in _API_FIELDS and value is not None}


# --------------------------------------------------------------------------- the server


def build_server(store: PostmarkStore | None = None) -> MCPServer[Any]:
    """An MCP server over ``store`` (a freshly seeded one if not given)."""
    db = store if store is not None else PostmarkStore.seeded()
    server: MCPServer[Any] = MCPServer(
        "postmark-demo",
        title="Postmark (demo)",
        version="1.0.0",
        instructions="In-memory Postmark-like email API for mcpfence demos. Nothing is really sent.",
    )

    @server.tool(name="create_a_postmark_email", annotations=SEND)
    def send_email(
        From: FromArg,
        To: ToArg,
        Subject: Annotated[str, Field(description="The subject line (required).")],
        HtmlBody: OptionalText = None,
        TextBody: OptionalText = None,
        Cc: OptionalText = None,
        Bcc: OptionalText = None,
        ReplyTo: OptionalText = None,
        Tag: OptionalText = None,
        Headers: HeadersArg = None,
        TrackOpens: bool | None = None,
        TrackLinks: OptionalText = None,
        Metadata: dict[str, str] | None = None,
        MessageStream: StreamArg = None,
    ) -> dict[str, Any]:
        """Send one email. Without MessageStream it goes to the transactional 'outbound' stream."""
        return db.send(_message(locals()))

    @server.tool(name="create_a_postmark_templated_email", annotations=SEND)
    def send_templated(
        From: FromArg,
        To: ToArg,
        TemplateModel: Annotated[dict[str, Any], Field(description="Values for every template variable.")],
        TemplateId: Annotated[int | None, Field(description="The template's id, or use the alias.")] = None,
        TemplateAlias: Annotated[str | None, Field(description="The template's alias: 'welcome'.")] = None,
        Cc: OptionalText = None,
        Bcc: OptionalText = None,
        ReplyTo: OptionalText = None,
        Tag: OptionalText = None,
        Headers: HeadersArg = None,
        TrackOpens: bool | None = None,
        TrackLinks: OptionalText = None,
        Metadata: dict[str, str] | None = None,
        MessageStream: StreamArg = None,
    ) -> dict[str, Any]:
        """Send an email from a template. TemplateModel must supply every variable the template uses.

        Without MessageStream it goes to the transactional 'outbound' stream.
        """
        message = _message(locals())
        template = db.template(TemplateId, TemplateAlias)
        missing = sorted(template.variables - TemplateModel.keys())
        if missing:
            raise PostmarkError(1123, f"TemplateModel is missing variables: {', '.join(missing)}")
        message.update(
            TemplateId=template.template_id,
            TemplateAlias=template.alias,
            Subject=template.render(template.subject, TemplateModel),
            HtmlBody=template.render(template.html_body, TemplateModel),
            TextBody=template.render(template.text_body, TemplateModel),
        )
        return db.send(message)

    @server.tool(name="create_a_postmark_batch_email", annotations=SEND)
    async def send_batch(
        Messages: Annotated[list[EmailMessage], Field(min_length=1, max_length=MAX_BATCH)],
        ctx: Context[Any, Any],
    ) -> list[dict[str, Any]]:
        """Send up to 500 emails in one call; each gets its own result (ErrorCode 0 means accepted)."""
        results: list[dict[str, Any]] = []
        for done, message in enumerate(Messages, start=1):
            try:
                results.append(db.send(dict(message)))
            except PostmarkError as error:
                results.append({"To": message.get("To"), "ErrorCode": error.code, "Message": error.message})
            await report_progress(ctx, done, len(Messages))
        return results

    @server.tool(name="list_all_postmark_bounces", annotations=READ_ONLY)
    def list_bounces(
        count: Annotated[int, Field(ge=1, le=500, description="Bounces per page, up to 500.")] = 50,
        offset: Annotated[int, Field(ge=0, description="Bounces to skip.")] = 0,
        type: Annotated[str | None, Field(description="Only this type, e.g. HardBounce.")] = None,
        inactive: Annotated[bool | None, Field(description="Only (in)active addresses.")] = None,
        emailFilter: Annotated[str | None, Field(description="Only addresses containing this.")] = None,
        messagestream: Annotated[str | None, Field(description="Only this message stream.")] = None,
    ) -> dict[str, Any]:
        """List bounces, newest first, with whether each address is inactive and can be activated."""
        matching = [
            b
            for b in sorted(db.bounces.values(), key=lambda b: b.bounced_at, reverse=True)
            if (type is None or b.type == type)
            and (inactive is None or b.inactive == inactive)
            and (emailFilter is None or emailFilter.lower() in b.email.lower())
            and (messagestream is None or b.stream == messagestream)
        ]
        page = matching[offset : offset + count]
        return {"TotalCount": len(matching), "Bounces": [bounce_json(b) for b in page]}

    @server.tool(name="get_single_postmark_bounce_dump_by_id", annotations=READ_ONLY)
    def bounce_dump(id: Annotated[int, Field(description="The bounce's ID.")]) -> dict[str, Any]:
        """The raw SMTP source of a bounce, as the receiving server sent it (30 days retention)."""
        bounce = db.bounce(id)
        return {"Body": bounce.dump or ""}

    @server.tool(name="create_a_postmark_bounce_activation", annotations=ACTIVATE)
    def activate(id: Annotated[int, Field(description="The bounce's ID.")]) -> dict[str, Any]:
        """Reactivate a bounced address so mail to it is sent again (only if CanActivate)."""
        bounce = db.bounce(id)
        if not bounce.can_activate:
            raise PostmarkError(701, f"Bounce {id} cannot be activated ({bounce.type}).")
        bounce.inactive = False
        db.activations.append(id)
        return {"Message": "OK", "Bounce": bounce_json(bounce)}

    @server.tool(name="get_single_postmark_delivery_stat_by_id", annotations=READ_ONLY)
    def delivery_stats(
        id: Annotated[str, Field(description="The message stream: 'outbound' or 'broadcast'.")],
    ) -> dict[str, Any]:
        """Delivery stats of a message stream: inactive addresses and bounce counts by type."""
        if id not in db.streams:
            raise PostmarkError(1235, f"The message stream for the provided 'ID' ({id}) was not found.")
        bounces = [b for b in db.bounces.values() if b.stream == id]
        kinds = sorted({b.type for b in bounces})
        return {
            "MessageStream": id,
            "MessageStreamType": db.streams[id],
            "InactiveMails": sum(b.inactive for b in bounces),
            "Bounces": [{"Name": "All", "Count": len(bounces)}]
            + [{"Type": kind, "Name": kind, "Count": sum(b.type == kind for b in bounces)} for kind in kinds],
        }

    return server


# --------------------------------------------------------------------------- request budget


# --------------------------------------------------------------------------- seed data

_BOUNCE_DUMP = """Return-Path: <>
Received: from mx1.example.net (mx1.example.net [198.51.100.25])
\tby smtp.postmarkapp.example (Postfix) with ESMTPS id 4Xk2p1
\tfor <pm_bounces@pm-bounces.acme.example>; Tue, 17 Nov 2026 09:14:03 +0000 (UTC)
Date: Tue, 17 Nov 2026 09:14:03 +0000
From: Mail Delivery System <MAILER-DAEMON@mx1.example.net>
To: pm_bounces@pm-bounces.acme.example
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UNDARY"

--B0UNDARY
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx1.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

<{email}>: host mx1.example.net[198.51.100.25] said:
    550 5.1.1 <{email}>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--B0UNDARY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx1.example.net
Final-Recipient: rfc822; {email}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 User unknown
--B0UNDARY--
"""

_TEMPLATE_HTML = "<html><body>{}</body></html>"


def _seed(store: PostmarkStore) -> None:
    store.streams = {"outbound": "Transactional", "broadcast": "Broadcasts"}
    templates = [
        Template(
            40001,
            "welcome",
            "Welcome to {{product_name}}, {{name}}!",
            _TEMPLATE_HTML.format("<p>Hi {{name}}, get started: {{action_url}}</p>"),
            "Hi {{name}}, get started: {{action_url}}",
        ),
        Template(
            40002,
            "password-reset",
            "Reset your {{product_name}} password",
            _TEMPLATE_HTML.format("<p>Hi {{name}}, reset it here: {{action_url}}</p>"),
            "Hi {{name}}, reset it here: {{action_url}}",
        ),
        Template(
            40003,
            "receipt",
            "Your receipt {{receipt_id}}",
            _TEMPLATE_HTML.format("<p>Thanks {{name}}. Total: {{total}}</p>"),
            "Thanks {{name}}. Total: {{total}}",
        ),
        Template(
            40004,
            "spring-newsletter",
            "Spring picks for you, {{name}}",
            _TEMPLATE_HTML.format("<p>{{headline}}</p><a href='{{unsubscribe_url}}'>Unsubscribe</a>"),
            "{{headline}}\nUnsubscribe: {{unsubscribe_url}}",
        ),
        Template(
            40005,
            "weekly-digest",
            "Your weekly digest",
            _TEMPLATE_HTML.format("<p>{{digest}}</p><a href='{{unsubscribe_url}}'>Unsubscribe</a>"),
            "{{digest}}\nUnsubscribe: {{unsubscribe_url}}",
        ),
    ]
    store.templates = {t.template_id: t for t in templates}
    bounces = [
        Bounce(
            692560173,
            "HardBounce",
            "jane.smith@example.net",
            "outbound",
            "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "smtp;550 5.1.1 User unknown",
            "2026-11-17T09:14:03Z",
            inactive=True,
            can_activate=True,
            dump=_BOUNCE_DUMP.format(email="jane.smith@example.net"),
            subject="Your receipt R-1042",
        ),
        Bounce(
            692560174,
            "SoftBounce",
            "full.mailbox@example.org",
            "outbound",
            "Unable to temporarily deliver this email (ex: mailbox full).",
            "smtp;452 4.2.2 Mailbox full",
            "2026-11-18T16:40:12Z",
            inactive=False,
            can_activate=True,
            dump=None,
            subject="Reset your Acme password",
        ),
        Bounce(
            692560175,
            "SpamComplaint",
            "angry.reader@example.com",
            "broadcast",
            "The subscriber explicitly marked this message as spam.",
            "feedback loop report",
            "2026-11-19T07:02:55Z",
            inactive=True,
            can_activate=False,
            dump=None,
            subject="Spring picks for you",
        ),
        Bounce(
            692560176,
            "HardBounce",
            "old.address@example.co.uk",
            "broadcast",
            "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "smtp;550 5.1.1 No such user",
            "2026-11-20T11:25:41Z",
            inactive=True,
            can_activate=True,
            dump=_BOUNCE_DUMP.format(email="old.address@example.co.uk"),
            subject="Your weekly digest",
        ),
    ]
    store.bounces = {b.bounce_id: b for b in bounces}


def main(argv: list[str] | None = None) -> None:
    parser = upstream_parser("Postmark-like demo MCP server (in memory).", default_port=9002)
    run(build_server(), parser.parse_args(argv), OVER_BUDGET)


if __name__ == "__main__":
    main()
