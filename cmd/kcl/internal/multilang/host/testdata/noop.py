"""noop.py is a MultiLangDaemon record processor on the Python standard
library alone (it speaks the protocol as kclpy does) that does nothing with
its records: it checkpoints every batch at its last record, as a typical
processor does, and replies. The host benchmarks (../bench_test.go) run it as
the Python child.

With KCL_BENCH_INIT_STAMP set, it appends to that file the time (Unix
milliseconds) at which it got initialize, for the start-up measurement.
"""

import json
import os
import sys
import time


def send(message):
    sys.stdout.write("\n" + json.dumps(message) + "\n")
    sys.stdout.flush()


def read():
    """Returns the next message from the host, None at end of input."""
    for line in sys.stdin:
        if line.strip():
            return json.loads(line)
    return None


def checkpoint(sequence_number=None, sub_sequence_number=None):
    send({"action": "checkpoint", "sequenceNumber": sequence_number,
          "subSequenceNumber": sub_sequence_number})
    reply = read()
    if reply is None or reply.get("action") != "checkpoint":
        raise SystemExit("noop.py: no checkpoint reply")
    return reply.get("error")


def main():
    while True:
        message = read()
        if message is None:
            return
        action = message.get("action")
        if action == "initialize":
            stamp = os.environ.get("KCL_BENCH_INIT_STAMP")
            if stamp:
                with open(stamp, "a") as f:
                    f.write("%d\n" % (time.time() * 1000))
        elif action == "processRecords":
            records = message["records"]
            if records:
                last = records[-1]
                checkpoint(last["sequenceNumber"], last["subSequenceNumber"])
        elif action in ("shardEnded", "shutdownRequested"):
            checkpoint()
        send({"action": "status", "responseFor": action})


if __name__ == "__main__":
    main()
