"""Request-path access control: exposure filters, rate limits and token checks (SPEC §6)."""
