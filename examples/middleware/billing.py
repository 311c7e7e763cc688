"""The tool both middleware examples serve: a refund that records what it was asked to do."""

from __future__ import annotations

from pathlib import Path

POLICIES = Path(__file__).with_name("policies.yaml")
# What the server actually refunded, (invoice id, cents): what the policies protect.
REFUNDS: list[tuple[str, int]] = []


def refund(invoice_id: str, amount_cents: int) -> str:
    """Refund part or all of an invoice."""
    REFUNDS.append((invoice_id, amount_cents))
    return f"refunded {amount_cents} cents on {invoice_id}"
