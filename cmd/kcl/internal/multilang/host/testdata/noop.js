// noop.js is a record processor on aws-kcl 2.3.2, Amazon's Node MultiLang
// client, that does nothing with its records: it checkpoints every batch at
// its last record, as a typical processor does, and replies. The host
// benchmarks (../bench_test.go) run it as the Node child.
//
// With KCL_BENCH_INIT_STAMP set, it appends to that file the time (Unix
// milliseconds) at which it got initialize, for the start-up measurement.
'use strict';

const fs = require('fs');
const kcl = require('aws-kcl');

kcl({
  initialize(input, done) {
    const stamp = process.env.KCL_BENCH_INIT_STAMP;
    if (stamp) {
      fs.appendFileSync(stamp, `${Date.now()}\n`);
    }
    done();
  },
  processRecords(input, done) {
    const records = input.records;
    if (records.length === 0) {
      done();
      return;
    }
    input.checkpointer.checkpoint(records[records.length - 1].sequenceNumber, () => done());
  },
  leaseLost(input, done) {
    done();
  },
  shardEnded(input, done) {
    input.checkpointer.checkpoint(() => done());
  },
  shutdownRequested(input, done) {
    input.checkpointer.checkpoint(() => done());
  },
}).run();
