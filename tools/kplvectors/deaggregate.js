// deaggregate.js expands Kinesis records with the awslabs Node deaggregator
// (npm aws-kinesis-agg, pinned in package.json), so that Go tests can check
// that aggregates built by kcl's aggregate package decode in another
// implementation.
//
// It reads one JSON document on stdin:
//
//	{"records": [{"partitionKey": "...", "explicitHashKey": "..."|null,
//	              "data": base64, "sequenceNumber": "..."}, ...]}
//
// and writes one on stdout, one result per input record, in order:
//
//	{"package": "aws-kinesis-agg@4.2.8",
//	 "results": [{"error": null|"message",
//	              "userRecords": [{"partitionKey", "explicitHashKey", "sequenceNumber",
//	                               "subSequenceNumber", "data"}, ...]}, ...]}
//
// Each record goes through the package's deaggregateSync with checksums on.
// The package calls the hash key explicitPartitionKey; it is reported here
// as explicitHashKey, null when the package gives none. What the package
// returns is passed on unchanged otherwise, including its mistakes.
//
// Usage: node tools/kplvectors/deaggregate.js < request.json > response.json
'use strict';

const fs = require('fs');

const agg = require('aws-kinesis-agg');
const aggVersion = require('aws-kinesis-agg/package.json').version;

function deaggregateOne(r) {
  const kinesisRecord = {
    partitionKey: r.partitionKey,
    data: r.data,
    sequenceNumber: r.sequenceNumber,
  };
  if (r.explicitHashKey !== null && r.explicitHashKey !== undefined) {
    kinesisRecord.explicitPartitionKey = r.explicitHashKey;
  }
  let error = null;
  let userRecords = [];
  agg.deaggregateSync(kinesisRecord, true, (err, records) => {
    // The callback runs once per failing user record and once at the end.
    if (err) {
      error = error ?? String(err.message || err);
      return;
    }
    userRecords = records;
  });
  return {
    error,
    userRecords: userRecords.map((u) => ({
      partitionKey: u.partitionKey ?? null,
      explicitHashKey: u.explicitPartitionKey ?? null,
      sequenceNumber: u.sequenceNumber ?? null,
      subSequenceNumber: u.subSequenceNumber ?? null,
      data: u.data,
    })),
  };
}

function main() {
  const req = JSON.parse(fs.readFileSync(0, 'utf8'));
  if (!req || !Array.isArray(req.records)) {
    throw new Error('stdin: want {"records": [...]}');
  }
  const out = {
    package: 'aws-kinesis-agg@' + aggVersion,
    results: req.records.map(deaggregateOne),
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

try {
  main();
} catch (err) {
  process.stderr.write(`deaggregate.js: ${err.stack || err}\n`);
  process.exit(1);
}
