package kprom

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// descs are the metric descriptions, built once.
type descs struct {
	records, bytes, aggregates, skipped          *prometheus.Desc
	behind, maxBehind                            *prometheus.Desc
	batchRecords, processing                     *prometheus.Desc
	procErrors, procPanics, procRetries          *prometheus.Desc
	calls, callErrors, callSeconds, renewals     *prometheus.Desc
	leasesHeld, acquired, lost, released, ended  *prometheus.Desc
	checkpoints, checkpointFailures, checkpointS *prometheus.Desc
	syncs, syncFailures, syncSeconds             *prometheus.Desc
	kplMalformed, kplDropped                     *prometheus.Desc
	dynamoCalls, dynamoCapacity                  *prometheus.Desc
}

func newDescs(perShard bool) *descs {
	wl := []string{"stream", "worker"}
	sl := wl
	if perShard {
		sl = []string{"stream", "worker", "shard"}
	}
	with := func(extra string) []string { return append(append([]string{}, wl...), extra) }
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &descs{
		records:            d("kcl_records_processed_total", "User records the processor finished with (skipped batches excluded).", sl),
		bytes:              d("kcl_bytes_processed_total", "Data bytes of the user records processed.", sl),
		aggregates:         d("kcl_kpl_aggregates_total", "KPL aggregates the processed user records came from.", sl),
		skipped:            d("kcl_batches_skipped_total", "Batches the ErrorHandler skipped.", sl),
		behind:             d("kcl_behind_latest_seconds", "How far the shard's last GetRecords result or subscription event was behind the tip of the shard (MillisBehindLatest).", []string{"stream", "worker", "shard"}),
		maxBehind:          d("kcl_max_behind_latest_seconds", "The largest kcl_behind_latest_seconds over the shards the worker holds.", wl),
		batchRecords:       d("kcl_batch_records", "User records per processed batch.", wl),
		processing:         d("kcl_processing_seconds", "Time from a batch's first delivery to the processor until it succeeded, retries included.", wl),
		procErrors:         d("kcl_processor_errors_total", "Failed processor calls, panics included.", with("method")),
		procPanics:         d("kcl_processor_panics_total", "Processor calls that panicked.", with("method")),
		procRetries:        d("kcl_processor_retries_total", "Failed processor calls that are made again.", with("method")),
		calls:              d("kcl_kinesis_calls_total", "Kinesis calls of the shard readers, failed ones included.", with("op")),
		callErrors:         d("kcl_kinesis_errors_total", "Failed Kinesis calls of the shard readers, by kind of error.", append(with("op"), "kind")),
		callSeconds:        d("kcl_kinesis_call_seconds", "Kinesis call latency.", with("op")),
		renewals:           d("kcl_subscription_renewals_total", "SubscribeToShard calls that continued a shard after Kinesis ended the previous subscription.", wl),
		leasesHeld:         d("kcl_leases_held", "Leases the worker processes now.", wl),
		acquired:           d("kcl_leases_acquired_total", "Leases acquired.", wl),
		lost:               d("kcl_leases_lost_total", "Leases lost, by reason: expired, taken.", with("reason")),
		released:           d("kcl_leases_released_total", "Leases given up, by reason: stopping, handoff, shard_stopped, error.", with("reason")),
		ended:              d("kcl_shards_ended_total", "Shards processed to their end (SHARD_END written).", wl),
		checkpoints:        d("kcl_checkpoints_total", "Checkpoint writes, failed ones included.", wl),
		checkpointFailures: d("kcl_checkpoint_failures_total", "Checkpoint writes that failed.", wl),
		checkpointS:        d("kcl_checkpoint_seconds", "Checkpoint write latency.", wl),
		syncs:              d("kcl_shard_syncs_total", "Shard sync passes.", wl),
		syncFailures:       d("kcl_shard_sync_failures_total", "Shard sync passes that failed.", wl),
		syncSeconds:        d("kcl_shard_sync_seconds", "Shard sync pass duration.", wl),
		kplMalformed:       d("kcl_kpl_malformed_total", "KPL aggregates passed through as malformed.", wl),
		kplDropped:         d("kcl_kpl_dropped_total", "KPL aggregates dropped by the hash-range filter.", wl),
		dynamoCalls:        d("kcl_dynamodb_calls_total", "Lease table calls, by DynamoDB operation.", []string{"table", "operation"}),
		dynamoCapacity:     d("kcl_dynamodb_consumed_capacity_total", "Capacity units the lease table calls consumed, by DynamoDB operation, as DynamoDB reported them.", []string{"table", "operation"}),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	d := m.descs()
	for _, x := range []*prometheus.Desc{
		d.records, d.bytes, d.aggregates, d.skipped, d.behind, d.maxBehind, d.batchRecords, d.processing,
		d.procErrors, d.procPanics, d.procRetries, d.calls, d.callErrors, d.callSeconds, d.renewals,
		d.leasesHeld, d.acquired, d.lost, d.released, d.ended, d.checkpoints, d.checkpointFailures, d.checkpointS,
		d.syncs, d.syncFailures, d.syncSeconds, d.kplMalformed, d.kplDropped, d.dynamoCalls, d.dynamoCapacity,
	} {
		if x == d.behind && !m.o.perShard {
			continue
		}
		ch <- x
	}
}

func (m *Metrics) descs() *descs {
	m.descOnce.Do(func() { m.d = newDescs(m.o.perShard) })
	return m.d
}

// Collect implements prometheus.Collector. It reads the counters with
// atomic loads, holding no lock while it sends on ch.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	d := m.descs()
	now := time.Now()
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	hist := func(desc *prometheus.Desc, h *histogram, unit float64, labels ...string) {
		n, sum, buckets := h.snapshot(unit)
		ch <- prometheus.MustNewConstHistogram(desc, n, sum, buckets, labels...)
	}
	for _, w := range *m.workers.Load() {
		st, id := w.stream, w.id
		shards := m.liveShards(w, now)
		maxBehind := time.Duration(0)
		for _, s := range shards {
			held := s.held.Load()
			behind := time.Duration(s.behind.Load())
			if held {
				maxBehind = max(maxBehind, behind)
			}
			if !m.o.perShard {
				continue
			}
			counter(d.records, s.c.records.Load(), st, id, s.id)
			counter(d.bytes, s.c.bytes.Load(), st, id, s.id)
			counter(d.aggregates, s.c.aggregates.Load(), st, id, s.id)
			counter(d.skipped, s.c.skipped.Load(), st, id, s.id)
			if held {
				gauge(d.behind, behind.Seconds(), st, id, s.id)
			}
		}
		if !m.o.perShard {
			counter(d.records, w.all.records.Load(), st, id)
			counter(d.bytes, w.all.bytes.Load(), st, id)
			counter(d.aggregates, w.all.aggregates.Load(), st, id)
			counter(d.skipped, w.all.skipped.Load(), st, id)
		}
		gauge(d.maxBehind, maxBehind.Seconds(), st, id)
		hist(d.batchRecords, w.batchRecords, 1, st, id)
		hist(d.processing, w.processing, 1e-9, st, id)
		for i, name := range methods {
			if e := w.procErrors[i].Load(); e > 0 || i == 0 {
				counter(d.procErrors, e, st, id, name)
				counter(d.procPanics, w.procPanics[i].Load(), st, id, name)
				counter(d.procRetries, w.procRetry[i].Load(), st, id, name)
			}
		}
		for i, op := range ops {
			n := w.calls[i].Load()
			if n == 0 {
				continue // an op this worker's mode never calls
			}
			counter(d.calls, n, st, id, op)
			hist(d.callSeconds, w.callSeconds[i], 1e-9, st, id, op)
			for k, kind := range kinds {
				if e := w.callErrors[i][k].Load(); e > 0 || kind == kinds[0] {
					counter(d.callErrors, e, st, id, op, kind.String())
				}
			}
		}
		counter(d.renewals, w.renewals.Load(), st, id)
		gauge(d.leasesHeld, float64(w.leasesHeld.Load()), st, id)
		counter(d.acquired, w.acquired.Load(), st, id)
		for i, r := range lostReasons {
			counter(d.lost, w.lost[i].Load(), st, id, r)
		}
		for i, r := range releasedReasons {
			counter(d.released, w.released[i].Load(), st, id, r)
		}
		counter(d.ended, w.shardsEnded.Load(), st, id)
		counter(d.checkpoints, w.checkpoints.Load(), st, id)
		counter(d.checkpointFailures, w.checkpointFailures.Load(), st, id)
		hist(d.checkpointS, w.checkpointSeconds, 1e-9, st, id)
		counter(d.syncs, w.syncs.Load(), st, id)
		counter(d.syncFailures, w.syncFailures.Load(), st, id)
		hist(d.syncSeconds, w.syncSeconds, 1e-9, st, id)
		counter(d.kplMalformed, w.kplMalformed.Load(), st, id)
		counter(d.kplDropped, w.kplDropped.Load(), st, id)
	}
	for _, s := range m.o.stores {
		table, stats := s.Table(), s.Stats()
		c, u := stats.Calls, stats.Capacity
		for _, x := range []struct {
			op    string
			calls int64
			units float64
		}{
			{"GetItem", c.GetItem, u.GetItem}, {"PutItem", c.PutItem, u.PutItem}, {"UpdateItem", c.UpdateItem, u.UpdateItem},
			{"DeleteItem", c.DeleteItem, u.DeleteItem}, {"Scan", c.Scan, u.Scan}, {"Query", c.Query, u.Query},
			{"BatchGetItem", c.BatchGetItem, u.BatchGetItem}, {"DescribeTable", c.DescribeTable, 0}, {"CreateTable", c.CreateTable, 0},
		} {
			ch <- prometheus.MustNewConstMetric(d.dynamoCalls, prometheus.CounterValue, float64(x.calls), table, x.op)
			ch <- prometheus.MustNewConstMetric(d.dynamoCapacity, prometheus.CounterValue, x.units, table, x.op)
		}
	}
}

// liveShards returns w's shards, first dropping those no longer held for
// longer than the retention.
func (m *Metrics) liveShards(w *worker, now time.Time) []*shard {
	cur := *w.shards.Load()
	expired := false
	out := make([]*shard, 0, len(cur))
	for _, s := range cur {
		if m.expired(s, now) {
			expired = true
			continue
		}
		out = append(out, s)
	}
	if expired {
		w.mu.Lock()
		old := *w.shards.Load()
		next := make(map[string]*shard, len(old))
		for k, s := range old {
			if !m.expired(s, now) {
				next[k] = s
			}
		}
		w.shards.Store(&next)
		w.mu.Unlock()
	}
	return out
}

// expired reports whether s was last held longer than the retention ago.
func (m *Metrics) expired(s *shard, now time.Time) bool {
	ended := s.endedAt.Load()
	return !s.held.Load() && ended != 0 && now.Sub(time.Unix(0, ended)) > m.o.retention
}
