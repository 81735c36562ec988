// generate.js writes the KPL test vectors in testdata/kpl: user records and
// the Kinesis records that the awslabs Node aggregator (npm aws-kinesis-agg,
// pinned in package.json) builds from them. kcl's tests in testkit/internal/kplcompat
// deaggregate these records and must get the user records back exactly.
//
// Usage, from anywhere (paths are resolved from this file):
//
//	node tools/kplvectors/generate.js          rewrite testdata/kpl/*.json
//	node tools/kplvectors/generate.js --check  regenerate in memory and exit 1
//	                                           if any committed file differs
//
// The output is deterministic: every input comes from a seeded xorshift32
// generator (below; testkit/internal/kplcompat has the same one in Go) in a fixed
// order, and the package's aggregate() is run with a queue size of one, so
// encoded records arrive in order.
//
// File format (one vector per file):
//
//	{
//	  "name": "...", "description": "...", "package": "aws-kinesis-agg@4.2.8",
//	  "limit": {...},                       // max-size-payload only
//	  "userRecords": [ RECORD, ... ],       // the input, in order
//	  "aggregatedRecords": [ RECORD + "recordCount", ... ], // what the package emitted
//	  "encodedUserRecords": [ RECORD, ... ] // only where the package mis-encodes
//	}
//
// encodedUserRecords, present only in vectors that show a known bug of the
// package (integer-like-keys), lists what the aggregates really say, read
// with a correct decoder: that is what a deaggregator must return. The
// generator fails if any other vector's aggregates do not say exactly
// userRecords, or if a known bug stops showing.
//
// RECORD is {"partitionKey": string, "explicitHashKey": string|null, "data": base64}.
// Payloads larger than 64 KiB are not stored: a user record then has
// "dataGen": {"seed", "length"} (bytes from generatedBytes below) and
// "dataSHA256" instead of "data", and an aggregated record has "dataParts",
// a list of {"base64": ...} and {"gen": {"seed", "length"}} pieces whose
// concatenation is the record, with "dataLength" and "dataMD5" (hex).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const agg = require('aws-kinesis-agg');
// The package's protobufjs message type, used only to read aggregates back
// with correct index handling (see decodeAggregate).
const { AggregatedRecord } = require('aws-kinesis-agg/lib/common');
const aggVersion = require('aws-kinesis-agg/package.json').version;

const outDir = path.resolve(__dirname, '..', '..', 'testdata', 'kpl');
const packageName = 'aws-kinesis-agg@' + aggVersion;

// Payloads above this size are generated from a seed instead of stored.
const storeLimit = 64 * 1024;

// Kinesis hash keys are unsigned 128-bit integers written in decimal.
const maxHashKey = ((1n << 128n) - 1n).toString();

// xorshift32 (Marsaglia 2003): x ^= x << 13; x ^= x >>> 17; x ^= x << 5.
// A zero state would stay zero, so a zero seed is replaced by a constant.
function newRand(seed) {
  let x = (seed >>> 0) || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    next,
    // intn returns an integer in [0, n); the modulo bias is irrelevant here.
    intn: (n) => next() % n,
    bytes: (n) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
}

// generatedBytes returns length bytes: the xorshift32 outputs for seed,
// each written little-endian, the last one truncated. Go's twin is
// generatedBytes in testkit/internal/kplcompat/vectors_test.go.
function generatedBytes(seed, length) {
  const r = newRand(seed);
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) {
    const v = r.next();
    for (let k = 0; k < 4 && i + k < length; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
  }
  return b;
}

const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

// isArrayIndex reports whether s is a canonical decimal integer below
// 2^32-1. JavaScript enumerates such object keys first, in numeric order,
// whatever the insertion order, and the package builds its key tables with
// Object.keys: the integer-like-keys vector shows the result. The other
// vectors avoid such keys (or use a single one, inserted first) so that they
// test what they say.
function isArrayIndex(s) {
  return /^(0|[1-9][0-9]*)$/.test(s) && BigInt(s) < 2n ** 32n - 1n;
}

function randomKey(r, n) {
  let s = '';
  for (let i = 0; i < n; i++) s += alnum[r.intn(alnum.length)];
  return s;
}

function randomHashKey(r) {
  let v = 0n;
  for (let i = 0; i < 4; i++) v = (v << 32n) | BigInt(r.next());
  return v.toString();
}

// rec builds an input record; gen, when set, is the {seed, length} the data
// came from, so that the vector stores it instead of the bytes.
function rec(partitionKey, explicitHashKey, data, gen) {
  return { partitionKey, explicitHashKey: explicitHashKey ?? null, data, gen: gen ?? null };
}

function genRec(partitionKey, explicitHashKey, seed, length) {
  return rec(partitionKey, explicitHashKey, generatedBytes(seed, length), { seed, length });
}

// aggregateWithPackage runs the package's aggregate() over records and
// resolves to the encoded records in emission order and the error messages
// it reported.
function aggregateWithPackage(records) {
  const input = records.map((r) => {
    const o = { partitionKey: r.partitionKey, data: Buffer.from(r.data) };
    if (r.explicitHashKey !== null) o.explicitHashKey = r.explicitHashKey;
    return o;
  });
  return new Promise((resolve) => {
    const encoded = [];
    const errors = [];
    agg.aggregate(
      input,
      (enc, done) => {
        encoded.push(enc);
        done();
      },
      () => resolve({ encoded, errors }),
      (err) => errors.push(err.message),
      1,
    );
  });
}

// deaggregateWithPackage runs the package's deaggregateSync over one
// encoded record, checksums on.
function deaggregateWithPackage(enc) {
  let out;
  agg.deaggregateSync(
    { partitionKey: enc.partitionKey, data: enc.data.toString('base64'), sequenceNumber: '1' },
    true,
    (err, userRecords) => {
      if (err) throw err;
      out = userRecords;
    },
  );
  return out;
}

// decodeAggregate returns the user records an aggregate encodes, resolving
// key indexes against the tables as the KPL format defines them. The
// package's own deaggregateSync cannot be used for this: it gives a record
// without explicit_hash_key_index the table's first explicit hash key.
function decodeAggregate(data) {
  const magic = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);
  if (data.length < 20 || !data.subarray(0, 4).equals(magic)) throw new Error('not an aggregate');
  const msg = data.subarray(4, data.length - 16);
  if (md5(msg) !== data.subarray(data.length - 16).toString('hex')) throw new Error('aggregate MD5 mismatch');
  const m = AggregatedRecord.decode(msg);
  return m.records.map((r) => {
    const has = (f) => Object.prototype.hasOwnProperty.call(r, f);
    const pk = m.partition_key_table[Number(r.partition_key_index)];
    const ehk = has('explicit_hash_key_index') ? m.explicit_hash_key_table[Number(r.explicit_hash_key_index)] : null;
    if (pk === undefined || ehk === undefined) throw new Error('aggregate: key index out of range');
    return { partitionKey: pk, explicitHashKey: ehk, data: Buffer.from(r.data), gen: null };
  });
}

function sameRecords(a, b) {
  return (
    a.length === b.length &&
    a.every(
      (r, i) =>
        r.partitionKey === b[i].partitionKey &&
        r.explicitHashKey === b[i].explicitHashKey &&
        r.data.equals(b[i].data),
    )
  );
}

function sha256(b) {
  return crypto.createHash('sha256').update(b).digest('hex');
}

function md5(b) {
  return crypto.createHash('md5').update(b).digest('hex');
}

function userRecordJSON(r) {
  const o = { partitionKey: r.partitionKey, explicitHashKey: r.explicitHashKey };
  if (r.gen === null) {
    o.data = r.data.toString('base64');
  } else {
    o.dataGen = r.gen;
    o.dataSHA256 = sha256(r.data);
  }
  return o;
}

// dataParts splits an aggregate into stored bytes and references to the
// generated payloads inside it, which appear in input order.
function dataParts(data, generated) {
  const parts = [];
  let at = 0;
  for (const g of generated) {
    const i = data.indexOf(g.data, at);
    if (i < 0) continue;
    if (i > at) parts.push({ base64: data.subarray(at, i).toString('base64') });
    parts.push({ gen: g.gen });
    at = i + g.data.length;
  }
  if (at < data.length) parts.push({ base64: data.subarray(at).toString('base64') });
  return parts;
}

function aggregatedRecordJSON(enc, generated) {
  // The package names the field ExplicitHashKey (capital E) next to a
  // lower-case partitionKey and data; index.d.ts does not declare it.
  const o = { partitionKey: enc.partitionKey, explicitHashKey: enc.ExplicitHashKey ?? null };
  const inside = generated.filter((g) => enc.data.indexOf(g.data) >= 0);
  if (inside.length === 0) {
    o.data = enc.data.toString('base64');
  } else {
    o.dataParts = dataParts(enc.data, inside);
    o.dataLength = enc.data.length;
    o.dataMD5 = md5(enc.data);
  }
  o.recordCount = deaggregateWithPackage(enc).length;
  return o;
}

// largestAcceptedPayload finds, by bisection over the package's own size
// check, the largest payload it accepts for a record with partitionKey.
function largestAcceptedPayload(partitionKey) {
  const fits = (n) =>
    new agg.RecordAggregator().checkIfUserRecordFits({ partitionKey, data: Buffer.alloc(n) });
  let lo = 0;
  let hi = 2 * 1024 * 1024;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Each case returns {description, records, limit?}.
const cases = [
  {
    name: 'single-record',
    build: () => ({
      description: 'One user record: the smallest aggregate.',
      records: [rec('pk-0', null, Buffer.from('hello, kinesis'))],
    }),
  },
  {
    name: 'repeated-keys',
    build: () => {
      const r = newRand(2);
      const keys = ['alpha', 'beta', 'gamma', 'delta'];
      const records = [];
      for (let i = 0; i < 60; i++) {
        records.push(rec(keys[r.intn(keys.length)], null, r.bytes(r.intn(65))));
      }
      return { description: '60 records over 4 partition keys in random order: the key table holds each key once.', records };
    },
  },
  {
    name: 'many-partition-keys',
    build: () => {
      const r = newRand(3);
      const seen = new Set();
      const records = [];
      while (records.length < 500) {
        // Mostly short keys, a few of the maximum 256 characters.
        const n = records.length % 50 === 49 ? 256 : 1 + r.intn(40);
        const key = randomKey(r, n);
        if (seen.has(key) || isArrayIndex(key)) continue;
        seen.add(key);
        records.push(rec(key, null, r.bytes(r.intn(33))));
      }
      return { description: '500 distinct partition keys (1 to 256 characters), one record each.', records };
    },
  },
  {
    name: 'explicit-hash-keys',
    build: () => {
      const r = newRand(4);
      // "0" is the only integer-like key and is inserted first (isArrayIndex).
      const fixed = ['0', maxHashKey, (1n << 127n).toString(), ((1n << 127n) - 1n).toString()];
      const records = [rec('ehk-first', '0', Buffer.from('first record has hash key 0'))];
      records.push(rec('ehk-max', maxHashKey, Buffer.from('hash key 2^128-1')));
      for (let i = 0; i < 40; i++) {
        const pk = 'ehk-' + r.intn(8);
        let ehk;
        switch (r.intn(3)) {
          case 0: ehk = fixed[r.intn(fixed.length)]; break;
          case 1: ehk = randomHashKey(r); break;
          default: ehk = null; // routed by partition key
        }
        records.push(rec(pk, ehk, r.bytes(r.intn(20))));
      }
      return {
        description: 'Explicit hash keys 0, 2^127-1, 2^127, 2^128-1 and random ones, repeated and mixed with records that have none; the first record has one.',
        records,
      };
    },
  },
  {
    name: 'explicit-hash-key-after-first',
    build: () => ({
      description: 'The first record has no explicit hash key and a later one has: the package then gives the aggregate none.',
      records: [
        rec('plain-1', null, Buffer.from('no hash key')),
        rec('hashed', '85070591730234615865843651857942052864', Buffer.from('hash key 2^126')),
        rec('plain-2', null, Buffer.from('no hash key either')),
        rec('hashed', maxHashKey, Buffer.from('same key, hash key 2^128-1')),
      ],
    }),
  },
  {
    name: 'unicode-partition-keys',
    build: () => {
      const keys = [
        'caf\u00e9', // precomposed é
        'cafe\u0301', // e + combining acute: a different key
        '\u00fcber',
        '\u6570\u636e\u6d41', // CJK
        '\ud0a4', // Hangul
        '\u0645\u0641\u062a\u0627\u062d', // Arabic
        '\u0915\u0941\u0902\u091c\u0940', // Devanagari with combining signs
        '\ud83d\ude80', // emoji outside the BMP
        '\ud83d\udc69\u200d\ud83d\udcbb', // ZWJ sequence
        '\ud83c\uddef\ud83c\uddf5', // flag: two regional indicators
        'a\u0308\u0301\u0323', // stacked combining marks
        '\u9375'.repeat(256), // 256 three-byte characters: 768 UTF-8 bytes
        '\ud83d\ude00'.repeat(128), // 128 four-byte characters
      ];
      const records = keys.map((k, i) => rec(k, null, Buffer.from(`record ${i}: ${k.slice(0, 8)} \u2713`)));
      records.push(rec(keys[0], null, Buffer.from('repeat of the first key')));
      records.push(rec(keys[1], null, Buffer.from('repeat of the combining-mark key')));
      return { description: 'Multi-byte partition keys: Latin with and without combining marks, CJK, Hangul, Arabic, Devanagari, emoji, ZWJ sequences, 256-character keys; UTF-8 payloads.', records };
    },
  },
  {
    name: 'empty-payloads',
    build: () => ({
      description: 'Records with empty data, alone and between non-empty ones.',
      records: [
        rec('empty-0', null, Buffer.alloc(0)),
        rec('empty-1', null, Buffer.alloc(0)),
        rec('full', null, Buffer.from('x')),
        rec('empty-0', '0', Buffer.alloc(0)),
        rec('empty-2', null, Buffer.alloc(0)),
      ],
    }),
  },
  {
    name: 'binary-data',
    build: () => {
      const r = newRand(8);
      const ascending = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) ascending[i] = i;
      const descending = Buffer.from(ascending).reverse();
      // A payload that is itself a KPL aggregate: it must come back as
      // bytes, not be expanded again.
      const nested = new agg.RecordAggregator();
      nested.addUserRecord({ partitionKey: 'inner', data: Buffer.from('inner record') });
      const inner = nested.build().data;
      return {
        description: 'All 256 byte values in both orders, random bytes, NULs, the KPL magic alone and a whole KPL aggregate as user data.',
        records: [
          rec('bytes', null, ascending),
          rec('bytes', null, descending),
          rec('random', null, r.bytes(1024)),
          rec('nul', null, Buffer.alloc(17)),
          rec('magic', null, Buffer.from([0xf3, 0x89, 0x9a, 0xc2])),
          rec('nested', null, inner),
        ],
      };
    },
  },
  {
    name: 'integer-like-keys',
    misencodes: true,
    build: () => ({
      description:
        'BUG in the package: it builds its key tables with Object.keys, which lists integer-like keys ' +
        '("0" to "4294967294") first in numeric order, while the records index keys in insertion order. ' +
        'Records then carry other records\' partition and explicit hash keys; encodedUserRecords shows what ' +
        'the aggregate really says. Keys like "007" and "4294967295" are not integer-like and keep their place.',
      records: [
        rec('user-b', null, Buffer.from('1')),
        rec('42', null, Buffer.from('2')),
        rec('7', maxHashKey, Buffer.from('3')),
        rec('user-a', '12345', Buffer.from('4')),
        rec('007', '0', Buffer.from('5')),
        rec('4294967295', null, Buffer.from('6')),
        rec('4294967294', '12345', Buffer.from('7')),
        rec('42', null, Buffer.from('8')),
      ],
    }),
  },
  {
    name: 'max-size-payload',
    build: async () => {
      const pk = 'a';
      const n = largestAcceptedPayload(pk);
      const over = await aggregateWithPackage([genRec(pk, null, 11, n + 1)]);
      return {
        description: 'The largest payload the package accepts for a one-character partition key, generated from a seed.',
        limit: {
          partitionKey: pk,
          maxDataLength: n,
          onePlusError: over.errors[0] ?? null,
        },
        records: [genRec(pk, null, 10, n)],
      };
    },
  },
  {
    name: 'split-large-records',
    build: () => ({
      description: 'Two 700,000-byte payloads with a small record between: the package emits more than one aggregate.',
      records: [
        genRec('large-1', null, 21, 700000),
        rec('small', null, Buffer.from('between the large ones')),
        genRec('large-2', maxHashKey, 22, 700000),
      ],
    }),
  },
];

// format writes a vector with one record per line, so diffs stay readable.
function format(v) {
  const head = { name: v.name, description: v.description, package: packageName };
  if (v.limit) head.limit = v.limit;
  let s = JSON.stringify(head, null, 2).replace(/\n}$/, ',\n');
  const list = (key, items, last) => {
    s += `  "${key}": [\n`;
    s += items.map((o) => '    ' + JSON.stringify(o)).join(',\n');
    s += '\n  ]' + (last ? '\n' : ',\n');
  };
  list('userRecords', v.userRecords, false);
  list('aggregatedRecords', v.aggregatedRecords, !v.encodedUserRecords);
  if (v.encodedUserRecords) list('encodedUserRecords', v.encodedUserRecords, true);
  return s + '}\n';
}

async function buildVector(c) {
  const built = await c.build();
  const { encoded, errors } = await aggregateWithPackage(built.records);
  if (errors.length > 0) {
    throw new Error(`${c.name}: aws-kinesis-agg reported ${errors.join('; ')}`);
  }
  const generated = built.records.filter((r) => r.gen !== null);
  const decoded = encoded.flatMap((e) => decodeAggregate(e.data));
  const faithful = sameRecords(decoded, built.records);
  if (faithful === Boolean(c.misencodes)) {
    throw new Error(
      faithful
        ? `${c.name}: the package no longer mis-encodes this case; update the vector and the report`
        : `${c.name}: the package's aggregates do not encode the input; avoid integer-like keys (isArrayIndex)`,
    );
  }
  return format({
    name: c.name,
    description: built.description,
    limit: built.limit,
    userRecords: built.records.map(userRecordJSON),
    aggregatedRecords: encoded.map((e) => aggregatedRecordJSON(e, generated)),
    encodedUserRecords: faithful ? null : decoded.map(userRecordJSON),
  });
}

async function main() {
  const args = process.argv.slice(2);
  const check = args.includes('--check');
  const unknown = args.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`usage: node generate.js [--check]\nunknown arguments: ${unknown.join(' ')}\n`);
    process.exit(2);
  }

  const want = new Map();
  for (const c of cases) want.set(c.name + '.json', await buildVector(c));

  const have = fs.existsSync(outDir)
    ? fs.readdirSync(outDir).filter((f) => f.endsWith('.json')).sort()
    : [];

  if (check) {
    const problems = [];
    for (const [file, content] of want) {
      const p = path.join(outDir, file);
      if (!fs.existsSync(p)) problems.push(`missing: ${file}`);
      else if (fs.readFileSync(p, 'utf8') !== content) problems.push(`differs: ${file}`);
    }
    for (const file of have) if (!want.has(file)) problems.push(`not generated: ${file}`);
    if (problems.length > 0) {
      process.stderr.write(
        `testdata/kpl is out of date (${packageName}):\n  ${problems.join('\n  ')}\n` +
          'run: node tools/kplvectors/generate.js\n',
      );
      process.exit(1);
    }
    process.stdout.write(`testdata/kpl: ${want.size} vectors up to date (${packageName})\n`);
    return;
  }

  fs.mkdirSync(outDir, { recursive: true });
  for (const file of have) if (!want.has(file)) fs.unlinkSync(path.join(outDir, file));
  for (const [file, content] of want) fs.writeFileSync(path.join(outDir, file), content);
  process.stdout.write(`wrote ${want.size} vectors to ${path.relative(process.cwd(), outDir) || '.'}\n`);
}

main().catch((err) => {
  process.stderr.write(`generate.js: ${err.stack || err}\n`);
  process.exit(1);
});
