"""The admin side of routes and access: the admin API that edits the route store, and its CLI.

See docs/reference/access.md.
"""
