#!/usr/bin/env python3
"""A Kinesis record processor for `kcl multilang`, in standard-library Python.

kcl runs one copy of this program per shard it holds (executableName in
sample.properties) and feeds it that shard's records. It writes each record
as one JSON line to the file named by KCL_ML_RECORD_FILE (to stderr, which
kcl logs, when that is unset) and checkpoints after each batch, at the end of
a shard and when kcl stops.

    kcl multilang -p sample.properties

Environment:
    KCL_ML_RECORD_FILE       append {"shard","seq","sub","key","data"} per record
                             (data in base64) to this file
    KCL_ML_CHECKPOINT_EVERY  checkpoint after every N records instead of after
                             each batch (0, the default: after each batch)
"""

import json
import os
import sys
import time

from kclmini import CheckpointError, KCLProcess, RecordProcessorBase

# Checkpoint failures worth retrying, and how.
RETRYABLE = ("ThrottlingException", "KinesisClientLibDependencyException")
CHECKPOINT_ATTEMPTS = 5
CHECKPOINT_BACKOFF_SECONDS = 1.0


class RecordProcessor(RecordProcessorBase):
    """Records every record of one shard and checkpoints as it goes."""

    def __init__(self, record_file=None, checkpoint_every=0):
        self.record_file = record_file
        self.checkpoint_every = checkpoint_every
        self.shard_id = None
        self.unchecked = 0  # records processed since the last checkpoint
        self._fd = None

    def initialize(self, initialize_input):
        self.shard_id = initialize_input.shard_id
        if self.record_file:
            # One os.write per line on an O_APPEND descriptor: lines of the
            # children of every shard interleave whole in the one file.
            self._fd = os.open(self.record_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        log("initialize %s at %s" % (self.shard_id, initialize_input.sequence_number))

    def process_records(self, process_records_input):
        checkpointer = process_records_input.checkpointer
        for record in process_records_input.records:
            self.process_record(record)
            self.unchecked += 1
            if self.checkpoint_every and self.unchecked >= self.checkpoint_every:
                self.checkpoint(checkpointer, record.sequence_number, record.sub_sequence_number)
        if not self.checkpoint_every and self.unchecked:
            self.checkpoint(checkpointer)

    def process_record(self, record):
        """Does the work for one record: here, writes it down."""
        line = json.dumps({
            "shard": self.shard_id,
            "seq": record.sequence_number,
            "sub": record.sub_sequence_number,
            "key": record.partition_key,
            "data": record.data,
        }, separators=(",", ":")) + "\n"
        if self._fd is None:
            sys.stderr.write(line)
        else:
            os.write(self._fd, line.encode())

    def lease_lost(self, lease_lost_input):
        # Another worker holds the shard now; it starts from our last checkpoint.
        log("lease lost on %s" % self.shard_id)

    def shard_ended(self, shard_ended_input):
        # Checkpointing the end of the shard lets its children start.
        self.checkpoint(shard_ended_input.checkpointer)
        log("shard %s ended" % self.shard_id)

    def shutdown_requested(self, shutdown_requested_input):
        # kcl is stopping or handing the shard over: record where we are.
        self.checkpoint(shutdown_requested_input.checkpointer)
        log("shutdown requested on %s" % self.shard_id)

    def checkpoint(self, checkpointer, sequence_number=None, sub_sequence_number=None):
        """Checkpoints, retrying throttling and storage failures a few times.
        A lost lease ends the attempt quietly: the next owner takes over."""
        for attempt in range(1, CHECKPOINT_ATTEMPTS + 1):
            try:
                checkpointer.checkpoint(sequence_number, sub_sequence_number)
                self.unchecked = 0
                return
            except CheckpointError as e:
                if e.value == "ShutdownException":
                    log("checkpoint on %s: lease lost, not retrying" % self.shard_id)
                    return
                if e.value not in RETRYABLE or attempt == CHECKPOINT_ATTEMPTS:
                    raise
                log("checkpoint on %s: %s, attempt %d" % (self.shard_id, e.value, attempt))
                time.sleep(CHECKPOINT_BACKOFF_SECONDS * attempt)


def log(message):
    # stdout is the protocol; kcl logs every stderr line with the shard and pid.
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def main():
    processor = RecordProcessor(
        record_file=os.environ.get("KCL_ML_RECORD_FILE"),
        checkpoint_every=int(os.environ.get("KCL_ML_CHECKPOINT_EVERY") or 0),
    )
    KCLProcess(processor).run()


if __name__ == "__main__":
    main()
