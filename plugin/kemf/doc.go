// Package kemf publishes a kcl Worker's metrics to CloudWatch without
// calling CloudWatch: it writes them as Embedded Metric Format (EMF) JSON
// lines to an io.Writer, usually standard output, and the CloudWatch agent,
// ECS and EKS log routing (FireLens, Container Insights) or Lambda turn the
// lines into metrics. It needs no AWS SDK client and no IAM permission to
// put metrics.
//
//	emf, err := kemf.New(os.Stdout, "orders-app") // KCL's namespace: the application name
//	if err != nil {
//		return err
//	}
//	w, err := consumer.New(api, store, "orders", factory, consumer.WithHooks(emf))
//	...
//	emfCtx, stopEMF := context.WithCancel(context.WithoutCancel(ctx))
//	emfDone := make(chan error, 1)
//	go func() { emfDone <- emf.Run(emfCtx) }()
//	err = w.Run(ctx)
//	stopEMF() // after the Worker: the last flush holds its lease releases
//	<-emfDone
//
// Metric names, units and Operation dimensions are the Java KCL's where KCL
// has the metric (RecordsProcessed, DataBytesProcessed, MillisBehindLatest,
// KinesisDataFetcher.getRecords.Success and .Time, CurrentLeases,
// LostLeases, TakenLeases, UpdateLease.Success and .Time, ...), so that
// dashboards and alarms built on a Java KCL application keep working; the
// module's README lists them all.
//
// The hooks add to in-memory aggregates; every flush interval (one minute
// by default) Run encodes one line per shard and per worker operation and
// hands them to a writer goroutine through a bounded buffer. Counts are
// written as the interval's total; times and MillisBehindLatest as the
// interval's values (up to 100 per metric, then a sample that keeps the
// minimum and maximum). A writer that blocks or fails costs flushes, which
// Stats counts; the hooks never wait for it.
package kemf
