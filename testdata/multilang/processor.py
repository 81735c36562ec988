#!/usr/bin/env python3
"""The Python test processor of cmd/kcl/internal/e2e: examples/multilang-python's
RecordProcessor, plus the faults the tests switch on by environment. It behaves
exactly as processor.js (the aws-kcl one); see that file for the variables.

Besides records, it appends event lines to KCL_ML_RECORD_FILE:
{"event": "initialize"|"shardEnded"|"leaseLost"|"shutdownRequested"|"hang"|"kill"|
"checkpointError", "shard", "pid", "seq", "error"}.
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "multilang-python"))

from kclmini import CheckpointError, KCLProcess  # noqa: E402
from record_processor import RecordProcessor  # noqa: E402

# Lines a child may not send; the host must skip every one of them.
GARBAGE = [
    "this is not JSON",
    "   ",
    '{"action":"bogus"}',
    '{"responseFor":"processRecords"}',
    '{"action":"status","responseFor":"processRecords","extra":1}',
    "[1,2,3]",
]


def fires_once(marker):
    """Reports whether this child is the first to claim marker (or marker is unset)."""
    if not marker:
        return True
    try:
        os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        return True
    except FileExistsError:
        return False


class FaultyProcessor(RecordProcessor):
    def __init__(self, fault, fault_at, once, **kwargs):
        super().__init__(**kwargs)
        self.fault = fault
        self.fault_at = fault_at
        self.once = once
        self.calls = 0

    def event(self, name, **fields):
        fields.update(event=name, shard=self.shard_id, pid=os.getpid())
        os.write(self._fd, (json.dumps(fields, separators=(",", ":")) + "\n").encode())

    def initialize(self, initialize_input):
        super().initialize(initialize_input)
        self.event("initialize", seq=initialize_input.sequence_number)

    def process_records(self, process_records_input):
        records = process_records_input.records
        if not records:
            return super().process_records(process_records_input)
        self.calls += 1
        if self.fault == "garbage":
            for line in GARBAGE:
                # The protocol's own stdout; kclmini pointed sys.stdout at stderr.
                os.write(1, (line + "\n").encode())
        if self.calls == self.fault_at and self.fault in ("hang", "kill", "badcheckpoint") and fires_once(self.once):
            if self.fault == "hang":
                self.event("hang")
                while True:
                    time.sleep(60)
            if self.fault == "kill":
                half = max(1, len(records) // 2)
                for record in records[:half]:
                    self.process_record(record)
                self.event("kill", seq=records[half - 1].sequence_number)
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fault == "badcheckpoint":
                beyond = str(int(records[-1].sequence_number) + 1000000)
                try:
                    process_records_input.checkpointer.checkpoint(beyond)
                    self.event("checkpointError", seq=beyond, error=None)
                except CheckpointError as e:
                    self.event("checkpointError", seq=beyond, error=e.value)
        super().process_records(process_records_input)

    def lease_lost(self, lease_lost_input):
        self.event("leaseLost")
        super().lease_lost(lease_lost_input)

    def shard_ended(self, shard_ended_input):
        super().shard_ended(shard_ended_input)
        self.event("shardEnded")

    def shutdown_requested(self, shutdown_requested_input):
        super().shutdown_requested(shutdown_requested_input)
        self.event("shutdownRequested")


def main():
    record_file = os.environ.get("KCL_ML_RECORD_FILE")
    if not record_file:
        sys.exit("processor.py: KCL_ML_RECORD_FILE is not set")
    processor = FaultyProcessor(
        fault=os.environ.get("KCL_ML_FAULT", ""),
        fault_at=int(os.environ.get("KCL_ML_FAULT_AT") or 2),
        once=os.environ.get("KCL_ML_FAULT_ONCE"),
        record_file=record_file,
        checkpoint_every=int(os.environ.get("KCL_ML_CHECKPOINT_EVERY") or 0),
    )
    KCLProcess(processor).run()


if __name__ == "__main__":
    main()
