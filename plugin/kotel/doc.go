// Package kotel records a kcl Worker's metric hooks as OpenTelemetry
// metrics, on a MeterProvider the application supplies:
//
//	m, err := kotel.New(otel.GetMeterProvider(), "orders", kotel.WithWorkerID(id))
//	if err != nil {
//		return err
//	}
//	defer m.Close()
//	w, err := consumer.New(api, store, "orders", factory,
//		consumer.WithWorkerID(id), consumer.WithHooks(m))
//
// Instruments follow OpenTelemetry's naming: kcl.records.processed,
// kcl.batch.duration (seconds), kcl.data.processed (bytes),
// kcl.shard.lag (seconds behind the tip), kcl.leases.held and the rest,
// listed with their Java KCL equivalents in the module's README. Every
// measurement carries kcl.stream.name, kcl.worker.id when WithWorkerID is
// given, and per-shard ones kcl.shard.id unless WithoutShardAttributes is
// given, which bounds the series to a few per worker for large fleets.
//
// The hooks update instruments with attribute sets built once per shard,
// and never block the Worker: the SDK aggregates in memory and exports on
// its own schedule.
package kotel
