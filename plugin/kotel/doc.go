// Package kotel records the metric hooks of kcl Workers as OpenTelemetry
// metrics, on a MeterProvider the application supplies:
//
//	m, err := kotel.New(otel.GetMeterProvider(), kotel.WithLeaseStore(leases))
//	if err != nil {
//		return err
//	}
//	defer m.Close()
//	w, err := consumer.New(api, leases, "orders", factory, consumer.WithHooks(m))
//
// The instruments are kcl's metric set (see kcl's README, Observability):
// the Prometheus plugin's names written the OpenTelemetry way, with dots
// and units — kcl.records.processed, kcl.bytes.processed (By),
// kcl.processing.duration (s), kcl.behind_latest (s), kcl.leases.held and
// the rest, listed with their Java KCL equivalents in this module's README.
// Their attributes are the Prometheus plugin's labels: stream and worker on
// every measurement, shard on the per-shard ones unless
// WithoutShardAttributes is given, and op, kind, method or reason where
// they apply. One Metrics may serve several Workers.
//
// The hooks add to SDK instruments with attribute sets built on first use,
// allocate nothing once those exist, and never block the Worker: the SDK
// aggregates in memory and exports on its own schedule.
package kotel
