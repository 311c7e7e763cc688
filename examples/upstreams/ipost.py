"""An iPost-like MCP server for demos and tests: contacts, MD5 suppression lists, blobs,
journeys, process automations and DataTables, in memory and seeded with realistic data.

It behaves like the real API, footguns included, because those are what mcpfence's
shipped policies guard against:

- MD5 suppression lists hash each email exactly as given, so ``John.Doe@Example.com``
  never matches the stored ``john.doe@example.com``.
- A contact update that carries ``Email``/``Mobile`` sets ``GlobalEmailStatus``/
  ``GlobalMobileStatus`` to true (re-subscribing an opted-out contact), and ``null``
  or ``false`` opts the contact out.
- Blobs are sealed tokens; one edited character and the API answers "invalid blob".
- Journey ``Properties`` are stored as sent, nested objects and all.
- DataTable bulk updates silently drop columns the table does not declare.

Tool names and arguments follow the managed-MCP naming (``list_all_i_post_contacts``...).
Tests inject an :class:`IPostStore` to inspect what the upstream recorded.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NotRequired

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import MISSING, Field
from typing_extensions import TypedDict

if not __package__:  # run as `python examples/upstreams/ipost.py`: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from examples.upstreams.common import report_progress, run, upstream_parser

Scalar = str | int | float | bool | None
Id = str | int  # iPost takes ids as numbers or strings: 412 and "412" name the same journey
Ctx = Context[Any, Any]

MAX_PAGE = 10_000
# What the server answers over its request budget (HTTP 429, with Retry-After).
OVER_BUDGET = b'{"status": 429, "message": "Too Many Requests: retry after the time in Retry-After"}'

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
OVERWRITE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

# --------------------------------------------------------------------------- blobs


class InvalidBlob(ToolError):
    """A blob that does not decrypt: edited, truncated, re-encoded or made up."""


_BLOB_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_NONCE, _TAG = 12, 16


class BlobCodec:
    """Seals ``{"c": contact, "m": mailing}`` into an opaque urlsafe-base64 token.

    Encrypt-then-MAC with HMAC-SHA256 (keystream and tag), deterministic per payload so a
    contact's blob is stable across calls; any change to the token fails the tag check,
    which is why the model must pass it verbatim.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def seal(self, payload: dict[str, str]) -> str:
        plain = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        nonce = self._mac(b"nonce", plain)[:_NONCE]
        cipher = self._xor(nonce, plain)
        tag = self._mac(nonce, cipher)[:_TAG]
        return base64.urlsafe_b64encode(nonce + cipher + tag).rstrip(b"=").decode()

    def open(self, token: str) -> dict[str, str]:
        if not _BLOB_ALPHABET.fullmatch(token):
            raise InvalidBlob("Invalid blob: it must be passed exactly as received")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError) as exc:
            raise InvalidBlob("Invalid blob: it could not be decrypted") from exc
        nonce, cipher, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == token
        if not cipher or not canonical or not hmac.compare_digest(tag, self._mac(nonce, cipher)[:_TAG]):
            raise InvalidBlob("Invalid blob: it could not be decrypted")
        payload: dict[str, str] = json.loads(self._xor(nonce, cipher))
        return payload

    def _mac(self, *parts: bytes) -> bytes:
        return hmac.new(self._key, b"|".join(parts), hashlib.sha256).digest()

    def _xor(self, nonce: bytes, data: bytes) -> bytes:
        blocks = (self._mac(b"stream", nonce, i.to_bytes(4, "big")) for i in range(len(data) // 32 + 1))
        return bytes(a ^ b for a, b in zip(data, b"".join(blocks), strict=False))


# --------------------------------------------------------------------------- state


@dataclass
class Contact:
    contact_id: str
    email: str | None
    mobile: str | None
    first_name: str
    last_name: str
    global_email_status: bool
    global_mobile_status: bool
    custom_fields: dict[str, Scalar] = field(default_factory=dict)
    lists: list[str] = field(default_factory=list)
    last_click: str | None = None  # landing page of the last tracked click, if any


@dataclass
class ContactList:
    list_id: str
    name: str
    md5: bool = False  # an MD5 suppression list holds hashes, not contacts
    hashes: list[str] = field(default_factory=list)


@dataclass
class Journey:
    journey_id: str
    name: str


@dataclass
class Enrollment:
    journey_id: str
    contact_id: str
    email: str | None
    properties: dict[str, Any]


@dataclass
class Automation:
    automation_id: str
    name: str
    status: str  # Active | Inactive | Draft
    runs: int = 0


@dataclass
class DataTable:
    table_id: str
    name: str
    key: str
    attributes: dict[str, str]  # column name -> type
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class IPostStore:
    """Everything the server knows; tests read it to see what a call really did."""

    contacts: dict[str, Contact] = field(default_factory=dict)
    lists: dict[str, ContactList] = field(default_factory=dict)
    journeys: dict[str, Journey] = field(default_factory=dict)
    enrollments: list[Enrollment] = field(default_factory=list)
    automations: dict[str, Automation] = field(default_factory=dict)
    data_tables: dict[str, DataTable] = field(default_factory=dict)
    codec: BlobCodec = field(default_factory=lambda: BlobCodec(b"ipost-demo-blob-key"))
    # Tokens of another shape that the API accepts (the guides' examples) -> Contact_ID.
    blob_aliases: dict[str, str] = field(default_factory=dict)
    mailing_id: str = "M-20261118-SPRING"
    # The guides disagree whether a status sent without Email is applied: True models the
    # reading where iPost ignores GlobalEmailStatus unless the call also carries Email.
    status_needs_email: bool = False

    @classmethod
    def seeded(cls, filler_contacts: int = 240) -> IPostStore:
        """The demo data set: named contacts for the workflows plus ``filler_contacts`` more."""
        store = cls()
        _seed(store, filler_contacts)
        return store

    def contact(self, contact_id: Id) -> Contact:
        contact_id = str(contact_id)
        if contact_id not in self.contacts:
            raise ToolError(f"404 Not Found: no contact with Contact_ID {contact_id}")
        return self.contacts[contact_id]

    def contact_by_email(self, email: str) -> Contact | None:
        """Contact identity ignores case (unlike MD5 list matching, which is the trap)."""
        wanted = email.strip().lower()
        return next((c for c in self.contacts.values() if (c.email or "").lower() == wanted), None)

    def contact_by_blob(self, blob: str) -> Contact:
        return self.contact(self.open_blob(blob)["c"])

    def open_blob(self, blob: str) -> dict[str, str]:
        """The blob's payload; the guides' example tokens are accepted as the API accepts them."""
        if blob in self.blob_aliases:
            return {"c": self.blob_aliases[blob], "m": self.mailing_id}
        return self.codec.open(blob)

    def blob_for(self, contact_id: str) -> str:
        return self.codec.seal({"c": contact_id, "m": self.mailing_id})

    def tracked_url(self, contact: Contact) -> str | None:
        if contact.last_click is None:
            return None
        blob = self.blob_for(contact.contact_id)
        return f"{contact.last_click}?utm_source=ipost&utm_campaign={self.mailing_id}&blob={blob}"

    def new_contact_id(self) -> str:
        return str(max((int(i) for i in self.contacts), default=100000) + 1)

    def md5_list(self, list_id: Id) -> ContactList:
        found = self.lists.get(str(list_id))
        if found is None or not found.md5:
            raise ToolError(f"404 Not Found: no MD5 list with list_id {list_id}")
        return found

    def suppressed_on(self, contact: Contact) -> list[str]:
        """MD5 lists whose hashes contain the contact's email as stored (exact bytes)."""
        if contact.email is None:
            return []
        digest = md5_hex(contact.email)
        return [lst.list_id for lst in self.lists.values() if lst.md5 and digest in lst.hashes]

    def data_table(self, table_id: Id) -> DataTable:
        if str(table_id) not in self.data_tables:
            raise ToolError(f"404 Not Found: no DataTable with id {table_id}")
        return self.data_tables[str(table_id)]


def md5_hex(email: str) -> str:
    """The hash iPost stores: of the bytes as given, no trimming or lowercasing."""
    return hashlib.md5(email.encode()).hexdigest()


def contact_json(store: IPostStore, contact: Contact) -> dict[str, Any]:
    return {
        "Contact_ID": contact.contact_id,
        "Email": contact.email,
        "Mobile": contact.mobile,
        "FirstName": contact.first_name,
        "LastName": contact.last_name,
        "GlobalEmailStatus": contact.global_email_status,
        "GlobalMobileStatus": contact.global_mobile_status,
        "CustomFields": dict(contact.custom_fields),
        "Lists": list(contact.lists),
        "LastClickUrl": store.tracked_url(contact),
    }


@dataclass
class ContactChanges:
    """The fields of a contact update; ``MISSING`` (not sent) differs from ``None`` (sent as null)."""

    Email: str | MISSING | None = MISSING
    Mobile: str | MISSING | None = MISSING
    GlobalEmailStatus: bool | MISSING | None = MISSING
    GlobalMobileStatus: bool | MISSING | None = MISSING
    FirstName: str | MISSING = MISSING
    LastName: str | MISSING = MISSING
    CustomFields: dict[str, Scalar] | MISSING = MISSING


def apply_changes(contact: Contact, changes: ContactChanges, status_needs_email: bool = False) -> None:
    """The real API's rules, re-subscription footgun included.

    Sending ``Email`` (even unchanged) sets ``GlobalEmailStatus`` true unless the call
    also sends a status; a status of ``null`` or ``false`` opts the contact out.
    Likewise ``Mobile`` and ``GlobalMobileStatus``. With ``status_needs_email``, a
    ``GlobalEmailStatus`` sent without ``Email`` is ignored.
    """
    if status_needs_email and changes.Email is MISSING:
        changes.GlobalEmailStatus = MISSING
    if changes.Email is not MISSING:
        contact.email = changes.Email
        if changes.Email:
            contact.global_email_status = True
    if changes.Mobile is not MISSING:
        contact.mobile = changes.Mobile
        if changes.Mobile:
            contact.global_mobile_status = True
    if changes.GlobalEmailStatus is not MISSING:
        contact.global_email_status = bool(changes.GlobalEmailStatus)
    if changes.GlobalMobileStatus is not MISSING:
        contact.global_mobile_status = bool(changes.GlobalMobileStatus)
    if changes.FirstName is not MISSING:
        contact.first_name = changes.FirstName
    if changes.LastName is not MISSING:
        contact.last_name = changes.LastName
    if changes.CustomFields is not MISSING:
        contact.custom_fields.update(changes.CustomFields)


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    try:
        label, _, value = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        if label != "offset":
            raise ValueError(label)
        return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ToolError("400 Bad Request: invalid cursor; pass next_cursor from the previous page") from exc


# --------------------------------------------------------------------------- tool arguments

ContactId = Annotated[Id, Field(description="The contact's Contact_ID, e.g. 100001 or '100001'.")]
Blob = Annotated[
    str,
    Field(description="The contact's encrypted blob, exactly as received (from a `?blob=` tracked URL)."),
]
EmailArg = Annotated[
    str | MISSING | None,
    Field(description="Email address. Sending it sets GlobalEmailStatus to true unless one is sent."),
]
MobileArg = Annotated[
    str | MISSING | None,
    Field(description="Mobile (E.164). Sending it sets GlobalMobileStatus to true unless one is sent."),
]
EmailStatusArg = Annotated[
    bool | MISSING | None,
    Field(description="Email subscription: true subscribes; false or null opts the contact out of email."),
]
MobileStatusArg = Annotated[
    bool | MISSING | None,
    Field(description="SMS subscription: true subscribes; false or null opts the contact out of SMS."),
]
FirstNameArg = Annotated[str | MISSING, Field(description="First name.")]
LastNameArg = Annotated[str | MISSING, Field(description="Last name.")]
CustomFieldsArg = Annotated[
    dict[str, Scalar] | MISSING,
    Field(description="Custom field values by field name, merged into the contact's custom fields."),
]


class NewContact(TypedDict):
    Email: str
    Mobile: NotRequired[str]
    FirstName: NotRequired[str]
    LastName: NotRequired[str]
    GlobalEmailStatus: NotRequired[bool | None]
    GlobalMobileStatus: NotRequired[bool | None]
    CustomFields: NotRequired[dict[str, Scalar]]


class Recipient(TypedDict, total=False):
    Contact_ID: Id
    Email: str


# --------------------------------------------------------------------------- the server


def build_server(store: IPostStore | None = None) -> MCPServer[Any]:
    """An MCP server over ``store`` (a freshly seeded one if not given)."""
    db = store if store is not None else IPostStore.seeded()
    server: MCPServer[Any] = MCPServer(
        "ipost-demo",
        title="iPost (demo)",
        version="1.0.0",
        instructions="In-memory iPost-like marketing API for mcpfence demos. Data resets on restart.",
    )

    @server.tool(name="list_all_i_post_contacts", annotations=READ_ONLY)
    def list_contacts(
        list_id: Annotated[Id | None, Field(description="Only contacts on this list.")] = None,
        cursor: Annotated[str | None, Field(description="next_cursor from the previous page.")] = None,
        limit: Annotated[int, Field(ge=1, le=MAX_PAGE, description="Page size, up to 10,000.")] = 100,
    ) -> dict[str, Any]:
        """List contacts, a page at a time (up to 10,000 per page).

        Each contact carries its subscription statuses and, if it clicked a mailing,
        `LastClickUrl`: a tracked URL whose `blob` parameter identifies the contact.
        """
        wanted = None if list_id is None else str(list_id)
        if wanted is not None and wanted not in db.lists:
            raise ToolError(f"404 Not Found: no list with list_id {list_id}")
        matching = [c for c in db.contacts.values() if wanted is None or wanted in c.lists]
        start = decode_cursor(cursor) if cursor else 0
        page = matching[start : start + limit]
        more = start + limit < len(matching)
        return {
            "result": [contact_json(db, c) for c in page],
            "next_cursor": encode_cursor(start + limit) if more else None,
            "total": len(matching),
        }

    @server.tool(name="get_single_i_post_contact_by_id", annotations=READ_ONLY)
    def get_contact(id: ContactId) -> dict[str, Any]:
        """Get one contact by Contact_ID, with subscription statuses and custom fields."""
        return contact_json(db, db.contact(id))

    @server.tool(name="update_a_i_post_contact_by_id", annotations=OVERWRITE)
    def update_contact(
        id: ContactId,
        Email: EmailArg = MISSING,
        Mobile: MobileArg = MISSING,
        GlobalEmailStatus: EmailStatusArg = MISSING,
        GlobalMobileStatus: MobileStatusArg = MISSING,
        FirstName: FirstNameArg = MISSING,
        LastName: LastNameArg = MISSING,
        CustomFields: CustomFieldsArg = MISSING,
    ) -> dict[str, Any]:
        """Update a contact by Contact_ID. Only the fields sent are changed.

        As in iPost: sending Email or Mobile sets GlobalEmailStatus/GlobalMobileStatus
        to true unless that status is also sent, and a status of null or false opts the
        contact out.
        """
        contact = db.contact(id)
        changes = ContactChanges(
            Email, Mobile, GlobalEmailStatus, GlobalMobileStatus, FirstName, LastName, CustomFields
        )
        apply_changes(contact, changes, db.status_needs_email)
        return contact_json(db, contact)

    @server.tool(name="get_single_i_post_contacts_blob_by_id", annotations=READ_ONLY)
    def get_contact_by_blob(id: Blob) -> dict[str, Any]:
        """Get the contact a blob identifies (blobs come from `?blob=` in tracked URLs).

        A blob is an encrypted token: pass it exactly as received, or it will not decrypt.
        """
        payload = db.open_blob(id)
        return {**contact_json(db, db.contact(payload["c"])), "Mailing_ID": payload["m"]}

    @server.tool(name="update_a_i_post_contacts_blob_by_id", annotations=OVERWRITE)
    def update_contact_by_blob(
        id: Blob,
        Email: EmailArg = MISSING,
        Mobile: MobileArg = MISSING,
        GlobalEmailStatus: EmailStatusArg = MISSING,
        GlobalMobileStatus: MobileStatusArg = MISSING,
        FirstName: FirstNameArg = MISSING,
        LastName: LastNameArg = MISSING,
        CustomFields: CustomFieldsArg = MISSING,
    ) -> dict[str, Any]:
        """Update the contact a blob identifies (as a preference center does).

        Same rules as update_a_i_post_contact_by_id. The blob must be passed verbatim.
        """
        contact = db.contact_by_blob(id)
        changes = ContactChanges(
            Email, Mobile, GlobalEmailStatus, GlobalMobileStatus, FirstName, LastName, CustomFields
        )
        apply_changes(contact, changes, db.status_needs_email)
        return contact_json(db, contact)

    @server.tool(name="i_post_list_contacts_bulk_create", annotations=WRITE)
    async def bulk_create(
        list_id: Annotated[Id, Field(description="The list to add the contacts to.")],
        contacts: Annotated[list[NewContact], Field(min_length=1, max_length=MAX_PAGE)],
        ctx: Ctx,
    ) -> dict[str, Any]:
        """Create contacts on a list, up to 10,000 per call.

        An Email that already exists updates that contact instead (and, as for any
        update carrying Email, sets GlobalEmailStatus to true unless a status is sent).
        """
        list_id = str(list_id)
        if list_id not in db.lists or db.lists[list_id].md5:
            raise ToolError(f"404 Not Found: no contact list with list_id {list_id}")
        created: list[str] = []
        updated: list[str] = []
        for done, entry in enumerate(contacts, start=1):
            contact = db.contact_by_email(entry["Email"])
            if contact is None:
                contact = Contact(db.new_contact_id(), None, None, "", "", False, False)
                db.contacts[contact.contact_id] = contact
                created.append(contact.contact_id)
            else:
                updated.append(contact.contact_id)
            apply_changes(contact, ContactChanges(**entry), db.status_needs_email)
            if list_id not in contact.lists:
                contact.lists.append(list_id)
            await report_progress(ctx, done, len(contacts))
        return {"list_id": list_id, "created": created, "updated": updated}

    @server.tool(name="create_a_i_post_md_5_list_contact", annotations=WRITE)
    def add_md5(
        list_id: Annotated[Id, Field(description="The MD5 suppression list.")],
        emails: Annotated[list[str], Field(min_length=1, description="Email addresses to suppress.")],
    ) -> dict[str, Any]:
        """Add emails to an MD5 suppression list; each is stored as the MD5 hash of the address.

        Matching against contacts is by hash, so it is exact: the list hashes each email
        exactly as given.
        """
        target = db.md5_list(list_id)
        hashes = [md5_hex(email) for email in emails]
        target.hashes.extend(h for h in hashes if h not in target.hashes)
        return {"list_id": list_id, "added": len(hashes), "hashes": hashes}

    @server.tool(name="get_single_i_post_contact_status_by_id", annotations=READ_ONLY)
    def contact_status(id: ContactId) -> dict[str, Any]:
        """A contact's subscription statuses and whether an MD5 suppression list matches it."""
        contact = db.contact(id)
        lists = db.suppressed_on(contact)
        return {
            "Contact_ID": contact.contact_id,
            "Email": contact.email,
            "GlobalEmailStatus": contact.global_email_status,
            "GlobalMobileStatus": contact.global_mobile_status,
            "Suppressed": bool(lists),
            "SuppressionLists": lists,
        }

    @server.tool(name="create_a_i_post_journey_automation", annotations=WRITE)
    async def enroll(
        journey_id: Annotated[Id, Field(description="The journey to enroll the recipients in, e.g. 412.")],
        Recipients: Annotated[
            list[Recipient],
            Field(min_length=1, description="Each recipient by Contact_ID or Email."),
        ],
        ctx: Ctx,
        Properties: Annotated[
            dict[str, Any] | None,
            Field(description="Values the journey's messages can merge in, e.g. {'coupon': 'SPRING20'}."),
        ] = None,
    ) -> dict[str, Any]:
        """Enroll recipients in a journey. The journey then sends its messages to them.

        An Email with no contact creates one (subscribed). Properties are stored as sent.
        """
        journey_id = str(journey_id)
        journey = db.journeys.get(journey_id)
        if journey is None:
            raise ToolError(f"404 Not Found: no journey with journey_id {journey_id}")
        enrolled: list[dict[str, Any]] = []
        for done, recipient in enumerate(Recipients, start=1):
            contact = _recipient_contact(db, recipient)
            enrollment = Enrollment(journey_id, contact.contact_id, contact.email, dict(Properties or {}))
            db.enrollments.append(enrollment)
            enrolled.append({"Contact_ID": contact.contact_id, "Email": contact.email})
            await report_progress(ctx, done, len(Recipients))
        return {"journey_id": journey_id, "journey_name": journey.name, "enrolled": enrolled}

    @server.tool(name="create_a_i_post_process_automations_start", annotations=WRITE)
    def start_automation(
        id: Annotated[Id, Field(description="The process automation's id.")],
    ) -> dict[str, Any]:
        """Start a run of a process automation. Only Active automations can be started."""
        automation = db.automations.get(str(id))
        if automation is None:
            raise ToolError(f"404 Not Found: no process automation with id {id}")
        if automation.status != "Active":
            raise ToolError(f"409 Conflict: process automation {id} is {automation.status}, not Active")
        automation.runs += 1
        started = {"id": automation.automation_id, "name": automation.name, "run": automation.runs}
        return {**started, "status": "Started"}

    @server.tool(name="get_single_i_post_data_table_attribute_by_id", annotations=READ_ONLY)
    def data_table_attributes(
        id: Annotated[Id, Field(description="The DataTable's id.")],
    ) -> dict[str, Any]:
        """A DataTable's schema: its key attribute and every column with its type."""
        table = db.data_table(id)
        return {
            "DataTable_ID": table.table_id,
            "Name": table.name,
            "KeyAttribute": table.key,
            "Attributes": [{"Name": name, "Type": kind} for name, kind in table.attributes.items()],
        }

    @server.tool(name="i_post_datatable_records_bulk_update", annotations=OVERWRITE)
    async def bulk_update_records(
        id: Annotated[Id, Field(description="The DataTable's id.")],
        records: Annotated[
            list[dict[str, Any]],
            Field(min_length=1, max_length=MAX_PAGE, description="Rows by column name, each with the key."),
        ],
        ctx: Ctx,
    ) -> dict[str, Any]:
        """Insert or update DataTable rows by the table's key attribute, up to 10,000 per call."""
        table = db.data_table(id)
        created = updated = 0
        for done, record in enumerate(records, start=1):
            key = record.get(table.key)
            if key is None:
                raise ToolError(f"400 Bad Request: record {done} has no {table.key}")
            known = {column: value for column, value in record.items() if column in table.attributes}
            existing = table.records.get(str(key))
            if existing is None:
                table.records[str(key)] = known
                created += 1
            else:
                existing.update(known)
                updated += 1
            await report_progress(ctx, done, len(records))
        return {"DataTable_ID": table.table_id, "created": created, "updated": updated}

    return server


def _recipient_contact(db: IPostStore, recipient: Recipient) -> Contact:
    """The contact a journey recipient names; an unknown Email becomes a new subscribed contact."""
    if "Contact_ID" in recipient:
        return db.contact(recipient["Contact_ID"])
    if "Email" not in recipient:
        raise ToolError("400 Bad Request: each recipient needs Contact_ID or Email")
    contact = db.contact_by_email(recipient["Email"])
    if contact is None:
        contact = Contact(db.new_contact_id(), recipient["Email"], None, "", "", True, False)
        db.contacts[contact.contact_id] = contact
    return contact


# --------------------------------------------------------------------------- seed data

# The people the workflows use: opted in, opted out of email, of SMS, of both; email-only;
# and the guides' example contact 7765.
_PEOPLE = """\
Contact_ID,FirstName,LastName,Mobile,EmailOK,SmsOK,City,LoyaltyTier,Lists,LastClick
100001,John,Doe,+15125550101,1,1,Austin,Gold,301 302,https://shop.example.com/spring-sale
100002,Maria,Garcia,+13055550102,0,1,Miami,Silver,301,https://shop.example.com/new-arrivals
100003,Wei,Chen,,1,0,Seattle,Bronze,301,
100004,Aisha,Khan,+13125550104,1,0,Chicago,Gold,301 302,https://shop.example.com/spring-sale
100005,Liam,O'Brien,+35315550105,0,0,Dublin,Bronze,301,
100006,Sofia,Rossi,+390255550106,1,1,Milan,Silver,302,https://shop.example.com/loyalty
7765,Jane,Smith,,1,0,Portland,Gold,301,https://shop.example.com/spring-sale
"""
# The tokens and ids the guides' example calls use, so those calls work as written.
_GUIDE_BLOBS = {"encAbc890XYZ": "7765", "xyz123encBlobData": "100001"}


def _named_contacts() -> list[Contact]:
    return [
        Contact(
            row["Contact_ID"],
            f"{row['FirstName']}.{row['LastName']}@example.com".replace("'", "").lower(),
            row["Mobile"] or None,
            row["FirstName"],
            row["LastName"],
            global_email_status=row["EmailOK"] == "1",
            global_mobile_status=row["SmsOK"] == "1",
            custom_fields={"City": row["City"], "LoyaltyTier": row["LoyaltyTier"]},
            lists=row["Lists"].split(),
            last_click=row["LastClick"] or None,
        )
        for row in csv.DictReader(io.StringIO(_PEOPLE))
    ]


_FILLER_CITIES = ["Denver", "Boston", "Phoenix", "Portland", "Atlanta", "Toronto"]


def _seed(store: IPostStore, filler_contacts: int) -> None:
    store.lists = {
        "301": ContactList("301", "Newsletter"),
        "302": ContactList("302", "VIP customers"),
        "401": ContactList("401", "Global suppression (MD5)", md5=True),
    }
    store.contacts = {contact.contact_id: contact for contact in _named_contacts()}
    for n in range(filler_contacts):
        contact_id = str(100100 + n)
        store.contacts[contact_id] = Contact(
            contact_id,
            f"customer{n:05d}@example.net",
            None,
            "Customer",
            f"{n:05d}",
            global_email_status=n % 7 != 0,  # one in seven has opted out
            global_mobile_status=False,
            custom_fields={"City": _FILLER_CITIES[n % len(_FILLER_CITIES)], "LoyaltyTier": "Bronze"},
            lists=["301"],
        )
    store.blob_aliases = dict(_GUIDE_BLOBS)
    store.journeys = {
        "412": Journey("412", "Spring re-engagement"),
        "5001": Journey("5001", "Welcome series"),
        "5002": Journey("5002", "Spring sale follow-up"),
    }
    store.automations = {
        "7001": Automation("7001", "Nightly CRM sync", "Active"),
        "7002": Automation("7002", "Legacy list import", "Inactive"),
        "7003": Automation("7003", "Birthday rewards", "Draft"),
    }
    store.data_tables = {
        "9001": DataTable(
            "9001",
            "Orders",
            key="OrderId",
            attributes={
                "OrderId": "Text",
                "Contact_ID": "Number",
                "OrderTotal": "Decimal",
                "OrderDate": "Date",
                "Status": "Text",
            },
            records={
                "SO-1001": {
                    "OrderId": "SO-1001",
                    "Contact_ID": 100001,
                    "OrderTotal": 129.5,
                    "OrderDate": "2026-11-02",
                    "Status": "Shipped",
                },
                "SO-1002": {
                    "OrderId": "SO-1002",
                    "Contact_ID": 100004,
                    "OrderTotal": 42.0,
                    "OrderDate": "2026-11-10",
                    "Status": "Processing",
                },
            },
        ),
    }


def main(argv: list[str] | None = None) -> None:
    parser = upstream_parser("iPost-like demo MCP server (in memory).", default_port=9001)
    parser.add_argument(
        "--status-needs-email",
        action="store_true",
        help="ignore a GlobalEmailStatus sent without Email (one reading of iPost's guides)",
    )
    args = parser.parse_args(argv)
    store = IPostStore.seeded()
    store.status_needs_email = args.status_needs_email
    run(build_server(store), args, OVER_BUDGET)


if __name__ == "__main__":
    main()
