"""Re-deciding recorded ``tools/call``s with a candidate policy set (``mcpfence replay``)."""

from mcpfence.replay.diff import Change, ReplayReport, replay
from mcpfence.replay.records import RecordedCall, log_files, read_records

__all__ = ["Change", "RecordedCall", "ReplayReport", "log_files", "read_records", "replay"]
