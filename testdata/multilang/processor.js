// The Node test processor of cmd/kcl/internal/e2e: a record processor written
// on Amazon's MultiLangDaemon client aws-kcl (npm, pinned in the repository's
// package-lock.json), run unchanged by `kcl multilang`. processor.py is its
// Python twin and reads the same variables:
//
//   KCL_ML_RECORD_FILE       required: one JSON line per record processed,
//                            {"shard","seq","sub","key","data"} (data in base64),
//                            and event lines {"event","shard","pid",...}
//   KCL_ML_CHECKPOINT_EVERY  checkpoint after every N records (at that record)
//                            instead of after each batch; 0 or unset: each batch
//   KCL_ML_FAULT             a fault on the KCL_ML_FAULT_AT-th (default 2nd)
//                            non-empty processRecords call of a child:
//                              hang           never answer
//                              kill           process half the batch, then SIGKILL itself
//                              badcheckpoint  first checkpoint 10^6 past the batch's last
//                                             record, record the error, then go on
//                              garbage        (every call) write lines that are not messages
//   KCL_ML_FAULT_ONCE        a path: only the first child to create it has the fault
//
// Run by hand: KCL_ML_RECORD_FILE=/tmp/r.jsonl node testdata/multilang/processor.js
// and type protocol lines (/work/shared/MULTILANG.md) on stdin.
'use strict';

const fs = require('fs');
const kcl = require('aws-kcl');

const recordFile = process.env.KCL_ML_RECORD_FILE;
if (!recordFile) {
  process.stderr.write('processor.js: KCL_ML_RECORD_FILE is not set\n');
  process.exit(2);
}
const checkpointEvery = parseInt(process.env.KCL_ML_CHECKPOINT_EVERY || '0', 10);
const fault = process.env.KCL_ML_FAULT || '';
const faultAt = parseInt(process.env.KCL_ML_FAULT_AT || '2', 10);
const faultOnce = process.env.KCL_ML_FAULT_ONCE || '';

const GARBAGE = [
  'this is not JSON',
  '   ',
  '{"action":"bogus"}',
  '{"responseFor":"processRecords"}',
  '{"action":"status","responseFor":"processRecords","extra":1}',
  '[1,2,3]',
];

// One writeSync per line on an O_APPEND descriptor: the lines of every
// child interleave whole in the one file.
const fd = fs.openSync(recordFile, 'a');

function writeLine(obj) {
  fs.writeSync(fd, JSON.stringify(obj) + '\n');
}

function firesOnce() {
  if (!faultOnce) {
    return true;
  }
  try {
    fs.closeSync(fs.openSync(faultOnce, 'wx'));
    return true;
  } catch (e) {
    if (e.code === 'EEXIST') {
      return false;
    }
    throw e;
  }
}

function processor() {
  let shardId = null;
  let calls = 0;
  let unchecked = 0;

  function event(name, fields) {
    writeLine(Object.assign({event: name, shard: shardId, pid: process.pid}, fields || {}));
  }

  function record(r) {
    writeLine({shard: shardId, seq: r.sequenceNumber, sub: r.subSequenceNumber || 0, key: r.partitionKey, data: r.data});
  }

  // checkpoint calls done() after a successful checkpoint; any error but a
  // lost lease ends the child, so the host restarts it at the last checkpoint.
  function checkpoint(checkpointer, seq, done) {
    const cb = function (err) {
      if (err && err !== 'ShutdownException') {
        throw new Error('processor.js: checkpoint on ' + shardId + ' failed: ' + err);
      }
      unchecked = 0;
      done();
    };
    if (seq === null) {
      checkpointer.checkpoint(cb);
    } else {
      checkpointer.checkpoint(seq, cb);
    }
  }

  // processFrom processes records[i:] one at a time, checkpointing every
  // checkpointEvery records, then calls done.
  function processFrom(records, i, checkpointer, done) {
    for (; i < records.length; i++) {
      record(records[i]);
      unchecked++;
      if (checkpointEvery > 0 && unchecked >= checkpointEvery) {
        const next = i + 1;
        checkpoint(checkpointer, records[i].sequenceNumber, function () {
          processFrom(records, next, checkpointer, done);
        });
        return;
      }
    }
    if (checkpointEvery === 0 && unchecked > 0) {
      checkpoint(checkpointer, null, done);
      return;
    }
    done();
  }

  return {
    initialize: function (input, completeCallback) {
      shardId = input.shardId;
      event('initialize', {seq: input.sequenceNumber});
      completeCallback();
    },

    processRecords: function (input, completeCallback) {
      const records = input.records || [];
      if (records.length === 0) {
        completeCallback();
        return;
      }
      calls++;
      if (fault === 'garbage') {
        for (const line of GARBAGE) {
          process.stdout.write(line + '\n');
        }
      }
      const checkpointer = input.checkpointer;
      if (calls === faultAt && (fault === 'hang' || fault === 'kill' || fault === 'badcheckpoint') && firesOnce()) {
        if (fault === 'hang') {
          event('hang');
          setInterval(function () {}, 60000); // never answer, stay alive
          return;
        }
        if (fault === 'kill') {
          const half = Math.max(1, Math.floor(records.length / 2));
          for (let i = 0; i < half; i++) {
            record(records[i]);
          }
          event('kill', {seq: records[half - 1].sequenceNumber});
          process.kill(process.pid, 'SIGKILL');
          return;
        }
        const beyond = (BigInt(records[records.length - 1].sequenceNumber) + 1000000n).toString();
        checkpointer.checkpoint(beyond, function (err) {
          event('checkpointError', {seq: beyond, error: err || null});
          processFrom(records, 0, checkpointer, completeCallback);
        });
        return;
      }
      processFrom(records, 0, checkpointer, completeCallback);
    },

    leaseLost: function (input, completeCallback) {
      event('leaseLost');
      completeCallback();
    },

    shardEnded: function (input, completeCallback) {
      checkpoint(input.checkpointer, null, function () {
        event('shardEnded');
        completeCallback();
      });
    },

    shutdownRequested: function (input, completeCallback) {
      checkpoint(input.checkpointer, null, function () {
        event('shutdownRequested');
        completeCallback();
      });
    },
  };
}

kcl(processor()).run();
