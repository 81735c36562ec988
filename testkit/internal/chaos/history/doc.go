// Package history is the chaos harness's judge: it reads the JSON-lines logs
// of a run — the producer's acknowledged puts, each worker's processed
// records, lease events and checkpoint writes, and the harness's own record
// of what it did to each worker process — and checks them against what KCL
// promises (see Check for the rules, Report for the verdict).
//
// Every line is one JSON object whose "type" field names its Go type:
//
//	{"type":"produced","t":"…","key":"k1","n":0,"shard":"shardId-000000000000","seq":"4960…"}
//	{"type":"processed","t":"…","w":"w1","shard":"shardId-000000000000","seq":"4960…","sub":0,"key":"k1","n":0}
//	{"type":"lease","t":"…","w":"w1","shard":"shardId-000000000000","kind":"acquired"}
//	{"type":"checkpoint","t":"…","start":"…","w":"w1","shard":"shardId-000000000000","pos":"4960…/0"}
//	{"type":"lifecycle","t":"…","w":"w1","kind":"sigkill"}
//
// Writers build lines with AppendLine; any mix of types may share a file.
// Reading is strict (a malformed line is a *ParseError naming the file and
// line), except that a last line cut short by a killed process is dropped
// and counted.
//
// All processes of a run share one machine clock; Options.Epsilon absorbs
// what is left of ordering noise between them.
package history
