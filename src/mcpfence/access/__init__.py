"""Request-path access control: exposure filters, rate limits and token checks (docs/reference/access.md)."""
