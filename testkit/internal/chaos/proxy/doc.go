// Package proxy is a fault-injecting reverse proxy for AWS JSON-protocol
// services (Kinesis, DynamoDB), used by the chaos harness to put workers
// on a bad network without changing their code.
//
// # How the harness uses it
//
// The harness starts one Proxy per emulator and hands the proxies' URLs to
// worker processes as their endpoints, so every AWS call crosses a proxy:
//
//	kin, err := proxy.New("http://127.0.0.1:4567", proxy.WithSeed(seed), proxy.WithOnFault(history.Record))
//	ddb, err := proxy.New("http://127.0.0.1:8000", proxy.WithSeed(seed+1), proxy.WithOnFault(history.Record))
//	kinURL, err := kin.Start()   // "http://127.0.0.1:NNNNN"
//	ddbURL, err := ddb.Start()
//	defer kin.Close(); defer ddb.Close()
//	// worker env: KCL_KINESIS_ENDPOINT=kinURL KCL_DYNAMODB_ENDPOINT=ddbURL
//
// Faults are off until SetRules; the harness opens a fault window by
// setting rules and closes it with SetRules(nil):
//
//	kin.SetRules([]proxy.Rule{
//		{Op: "GetRecords", Kind: proxy.Throttle, Probability: 0.2},
//		{Op: "GetRecords", Kind: proxy.ExpiredIterator, Probability: 0.05},
//		{Kind: proxy.Latency, Probability: 0.5, Latency: 200 * time.Millisecond},
//	})
//	ddb.SetRules([]proxy.Rule{{Op: "UpdateItem", Kind: proxy.DropResponse, Probability: 0.1}})
//	... // window
//	kin.SetRules(nil); ddb.SetRules(nil)
//
// A client that connects through a listener of its own (StartClient) can
// be cut off alone, as a network partition would, and healed:
//
//	w1URL, err := ddb.StartClient("w1")   // worker w1's endpoint
//	ddb.Isolate("w1")   // w1's requests hang unanswered, its pending answers are dropped
//	... // partition
//	ddb.Heal("w1")
//
// Faults on long-lived enhanced fan-out subscriptions are drawn when the
// subscription starts; CutStream ends one mid-stream:
//
//	kin.SetRules([]proxy.Rule{{Op: "SubscribeToShard", Kind: proxy.CutStream, Probability: 0.5, Latency: 20 * time.Second}})
//
// At the end it prints Stats (faults injected by kind: Stats().ByKind())
// and the seeds (Seed) so a failing run can be replayed.
//
// # Rules and randomness
//
// For each request the proxy takes the operation from X-Amz-Target and
// evaluates the rules in order: every rule that matches the operation draws
// one number from a single seeded math/rand/v2 source, under a mutex, and
// fires if the draw is below its Probability. Latency rules add up; the
// first firing rule of a kind that ends the request (Reset, Blackhole,
// Error500, Throttle, ExpiredIterator, DropResponse) stops the evaluation.
// The same seed and the same order of requests give the same faults; with
// concurrent workers the order of arrival, and so the replay, is only as
// repeatable as the schedule.
//
// # Protocols
//
// The proxy accepts HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on one
// port and forwards each request upstream with the protocol it came in on,
// so SubscribeToShard works through it. Responses are flushed as bytes
// arrive: an event stream passes through unbuffered for as long as it
// lasts. Reset, Blackhole and DropResponse close the TCP connection with
// RST on HTTP/1.1 and reset only the stream (RST_STREAM) on h2c; CutStream
// closes the connection on HTTP/1.1 and resets the stream on h2c.
//
// What aws-sdk-go-v2 returns (tested, over both protocols): Throttle is the
// service's *types.ProvisionedThroughputExceededException (retryable);
// ExpiredIterator is *types.ExpiredIteratorException (not retryable);
// Error500 is a retryable HTTP 500 with code InternalFailure; Reset,
// DropResponse and a released Blackhole are retryable connection errors
// ("connection reset by peer" on HTTP/1.1, "stream error ... INTERNAL_ERROR"
// on h2c); a held Blackhole ends with the caller's context; CutStream ends a
// SubscribeToShard event stream, whose Err then reports the reset.
//
// Close ends every request in flight, including held blackholes and open
// streams, and returns after their handlers have returned.
package proxy
