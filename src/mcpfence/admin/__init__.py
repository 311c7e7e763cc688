"""The admin side of routes and access: the route store, the admin API and its CLI (SPEC §6)."""
