"""Cluster mode: state several replicas (or workers) share through Redis.

See docs/how-to/cluster.md. Without a ``cluster`` key nothing here is imported
at start and mcpfence needs no Redis.
"""


class SharedStateUnavailable(Exception):
    """The shared store did not answer: whatever needed it is refused, never guessed."""
