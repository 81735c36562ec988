"""kclmini: the child side of the MultiLangDaemon protocol, in standard-library Python.

A record processor run by `kcl multilang` (or by the Java MultiLangDaemon) is a
child process that reads one JSON message per line on stdin and answers on
stdout. This module is that loop, shaped like kclpy's v3 API
(amazon_kclpy.v3.processor.RecordProcessorBase), so a kclpy processor ports by
changing its imports:

    from kclmini import CheckpointError, KCLProcess, RecordProcessorBase

    class RecordProcessor(RecordProcessorBase):
        def initialize(self, initialize_input): ...
        def process_records(self, process_records_input): ...
        def lease_lost(self, lease_lost_input): ...
        def shard_ended(self, shard_ended_input): ...
        def shutdown_requested(self, shutdown_requested_input): ...

    if __name__ == "__main__":
        KCLProcess(RecordProcessor()).run()

Two things differ from kclpy, on purpose:

- stdout belongs to the protocol. KCLProcess.run points sys.stdout at stderr,
  so a stray print() becomes a log line of the host instead of a line the
  host has to skip.
- An exception raised by the processor ends the child (status 1) instead of
  being printed and answered with a status, which skips the batch. kcl then
  starts a new child at the last checkpoint and delivers the records after it
  again; nothing is skipped.
"""

import base64
import json
import sys

__all__ = [
    "CheckpointError",
    "Checkpointer",
    "InitializeInput",
    "KCLProcess",
    "LeaseLostInput",
    "ProcessRecordsInput",
    "Record",
    "RecordProcessorBase",
    "ShardEndedInput",
    "ShutdownRequestedInput",
]


class CheckpointError(Exception):
    """A checkpoint the host refused. value is the Java exception's simple name:

    - IllegalArgumentException: the position is before the last checkpoint or
      after the last record delivered to this processor (a bug; do not retry);
    - ShutdownException: this worker no longer holds the lease (do not retry);
    - ThrottlingException, KinesisClientLibDependencyException: the lease
      table failed for now (retrying later is fine);
    - InvalidStateException: no checkpointer in this call, or no lease table.
    """

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return str(self.value)


class Record:
    """One Kinesis record, de-aggregated by the host when it came from the KPL."""

    __slots__ = ("sequence_number", "sub_sequence_number", "partition_key", "data", "timestamp_millis")

    def __init__(self, message):
        self.sequence_number = message["sequenceNumber"]
        self.sub_sequence_number = message.get("subSequenceNumber") or 0
        self.partition_key = message["partitionKey"]
        # data is the record's bytes in standard base64, as sent.
        self.data = message["data"]
        # timestamp_millis is the approximate arrival time in epoch milliseconds, or None.
        self.timestamp_millis = message.get("approximateArrivalTimestamp")

    @property
    def binary_data(self):
        """The record's bytes."""
        return base64.b64decode(self.data)


class InitializeInput:
    """Where the processor starts: shard_id, and the lease's checkpoint
    (sequence_number: digits, TRIM_HORIZON, LATEST, AT_TIMESTAMP or None)."""

    def __init__(self, message):
        self.shard_id = message["shardId"]
        self.sequence_number = message.get("sequenceNumber")
        self.sub_sequence_number = message.get("subSequenceNumber")


class ProcessRecordsInput:
    """A batch: records in stream order, millis_behind_latest, and a checkpointer."""

    def __init__(self, message, checkpointer):
        self.records = [Record(r) for r in message.get("records") or ()]
        self.millis_behind_latest = message.get("millisBehindLatest")
        self.checkpointer = checkpointer


class LeaseLostInput:
    """The lease went to another worker; checkpointing is no longer possible."""


class ShardEndedInput:
    """The shard is closed and every record was delivered. The processor must
    checkpoint (checkpointer.checkpoint()), or the shard's children never start."""

    def __init__(self, checkpointer):
        self.checkpointer = checkpointer


class ShutdownRequestedInput:
    """The worker is stopping or handing the lease over: checkpoint now if you want to."""

    def __init__(self, checkpointer):
        self.checkpointer = checkpointer


class _HostGone(Exception):
    """stdin ended while a reply was awaited: the host has gone."""


class _Channel:
    """The protocol's two pipes: messages in on one, out on the other."""

    def __init__(self, input_file, output_file):
        self._in = input_file
        self._out = output_file

    def read(self):
        """Returns the next message as a dict, or None at end of input. Empty lines are skipped."""
        while True:
            line = self._in.readline()
            if not line:
                return None
            line = line.strip()
            if line:
                return json.loads(line)

    def write(self, message):
        # kclpy and aws-kcl frame each message as "\n<json>\n"; hosts skip empty lines.
        self._out.write("\n" + json.dumps(message, separators=(",", ":")) + "\n")
        self._out.flush()


class Checkpointer:
    """Records progress in the lease table, through the host."""

    def __init__(self, channel):
        self._channel = channel

    def checkpoint(self, sequence_number=None, sub_sequence_number=None):
        """Checkpoints at (sequence_number, sub_sequence_number), or at the last
        record delivered when sequence_number is None (during shard_ended: the
        shard's end). It blocks until the host answers and raises CheckpointError
        when the host refuses."""
        self._channel.write({
            "action": "checkpoint",
            "sequenceNumber": sequence_number,
            "subSequenceNumber": sub_sequence_number,
        })
        reply = self._channel.read()
        if reply is None:
            raise _HostGone()
        if reply.get("action") != "checkpoint":
            # As kclpy: anything but a checkpoint reply means the host is confused.
            raise CheckpointError("InvalidStateException")
        if reply.get("error"):
            raise CheckpointError(reply["error"])


class RecordProcessorBase:
    """A record processor for one shard: initialize, then process_records zero
    or more times, then one of shard_ended or lease_lost, or shutdown_requested
    (which may be followed by lease_lost). Every method runs on the main thread,
    one at a time; the host waits for each to return."""

    def initialize(self, initialize_input):
        raise NotImplementedError

    def process_records(self, process_records_input):
        raise NotImplementedError

    def lease_lost(self, lease_lost_input):
        raise NotImplementedError

    def shard_ended(self, shard_ended_input):
        raise NotImplementedError

    def shutdown_requested(self, shutdown_requested_input):
        raise NotImplementedError

    version = 3


class KCLProcess:
    """Runs a record processor over stdin and stdout until the host closes stdin."""

    def __init__(self, record_processor, input_file=None, output_file=None):
        self._processor = record_processor
        self._input = input_file
        self._output = output_file

    def run(self):
        """Reads messages and calls the processor until stdin ends, then returns.
        An exception from the processor propagates: the child exits and the host
        restarts it at the last checkpoint."""
        input_file = self._input or sys.stdin
        output_file = self._output or sys.stdout
        if self._output is None:
            sys.stdout = sys.stderr
        channel = _Channel(input_file, output_file)
        checkpointer = Checkpointer(channel)
        try:
            while True:
                message = channel.read()
                if message is None:
                    return
                action = message.get("action")
                self._dispatch(action, message, checkpointer)
                channel.write({"action": "status", "responseFor": action})
        except _HostGone:
            return

    def _dispatch(self, action, message, checkpointer):
        p = self._processor
        if action == "initialize":
            p.initialize(InitializeInput(message))
        elif action == "processRecords":
            p.process_records(ProcessRecordsInput(message, checkpointer))
        elif action == "leaseLost":
            p.lease_lost(LeaseLostInput())
        elif action == "shardEnded":
            p.shard_ended(ShardEndedInput(checkpointer))
        elif action == "shutdownRequested":
            p.shutdown_requested(ShutdownRequestedInput(checkpointer))
        else:
            raise ValueError("kclmini: unknown action %r from the host" % (action,))
