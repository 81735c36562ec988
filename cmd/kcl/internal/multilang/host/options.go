package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/consumer"
)

// Restart backoff: a child that fails is replaced when the Worker delivers
// the failed batch again, after base·2ⁿ (jittered), capped at max. The
// first replacement comes within half a second; one that crashes on every
// batch settles at one attempt every 30 s and never blocks other shards.
const (
	restartBackoffBase = 500 * time.Millisecond
	restartBackoffMax  = 30 * time.Second
)

// minIdleTime is the shortest pause between GetRecords calls on one shard
// the Worker accepts (Kinesis allows five calls per second per shard).
const minIdleTime = 200 * time.Millisecond

// options maps the properties onto the Worker's options.
func (h *Host) options() []consumer.Option {
	p := h.props
	opts := []consumer.Option{
		consumer.WithWorkerID(h.workerID),
		consumer.WithLogger(h.log),
		consumer.WithLeaseDuration(p.FailoverTime),
		consumer.WithShardSyncInterval(p.ShardSyncInterval),
		consumer.WithParentPollInterval(p.ParentShardPollInterval),
		consumer.WithHandoffTimeout(max(p.GracefulLeaseHandoffTimeout, p.FailoverTime)),
		consumer.WithMaxLeases(p.MaxLeasesForWorker),
		coordination(p),
		consumer.WithFleetFailoverTime(p.FleetFailoverTime),
		// The children checkpoint; the host never does on their behalf,
		// except SHARD_END after shardEnded (see shard.ShardEnded).
		consumer.WithCheckpointPolicy(consumer.CheckpointManual()),
		// A failed child's batch is delivered again, to a new child, for as
		// long as it takes: never skipped. The handler is asked after each
		// failed retry only to give the lease up when a new child cannot be
		// given the records it would need (see errCannotReplay).
		consumer.WithRetryBackoff(restartBackoffBase, restartBackoffMax),
		consumer.WithRetryLimit(1),
		consumer.WithErrorHandler(retryUnlessUnreplayable),
	}
	switch p.InitialPosition {
	case properties.TrimHorizon:
		opts = append(opts, consumer.WithInitialPosition(checkpoint.TrimHorizon))
	case properties.AtTimestamp:
		opts = append(opts, consumer.WithInitialTimestamp(p.InitialTimestamp))
	default:
		opts = append(opts, consumer.WithInitialPosition(checkpoint.Latest))
	}
	if p.RetrievalMode == properties.FanOut {
		if p.ConsumerARN != "" {
			opts = append(opts, consumer.WithEnhancedFanOutConsumerARN(p.ConsumerARN))
		} else {
			opts = append(opts, consumer.WithEnhancedFanOut(p.ConsumerName))
		}
	} else {
		opts = append(opts, consumer.WithMaxRecords(p.MaxRecords), consumer.WithIdleTime(max(p.IdleTimeBetweenReads, minIdleTime)))
	}
	if p.ShutdownGrace > 0 {
		opts = append(opts, consumer.WithShutdownTimeout(p.ShutdownGrace))
	}
	if len(h.cfg.Hooks) > 0 {
		opts = append(opts, consumer.WithHooks(h.cfg.Hooks...))
	}
	return opts
}

// retryUnlessUnreplayable is the Worker's ErrorHandler: retry a failed
// batch (with a new child) unless the shard's records since the last
// checkpoint are no longer all kept, in which case the lease is given up so
// that the next owner reads them again from the checkpoint.
func retryUnlessUnreplayable(_ context.Context, _ *consumer.Batch, err error) consumer.Decision {
	if errors.Is(err, errCannotReplay) {
		return consumer.StopShard
	}
	return consumer.Retry
}

// warnings are the settings the host accepts but cannot honour as the Java
// host does.
func (h *Host) warnings() []string {
	p := h.props
	var out []string
	if p.MaxLeasesToStealAtOneTime != properties.DefaultMaxLeasesToStealAtOneTime {
		out = append(out, fmt.Sprintf("maxLeasesToStealAtOneTime=%d has no effect: kcl takes leases by fair share, one handoff request at a time", p.MaxLeasesToStealAtOneTime))
	}
	if p.RetrievalMode == properties.Polling && p.IdleTimeBetweenReads < minIdleTime {
		out = append(out, fmt.Sprintf("idleTimeBetweenReadsInMillis=%d is raised to %d: Kinesis allows 5 GetRecords calls per second per shard", p.IdleTimeBetweenReads.Milliseconds(), minIdleTime.Milliseconds()))
	}
	if p.GracefulLeaseHandoffTimeout < p.FailoverTime {
		out = append(out, fmt.Sprintf("gracefulLeaseHandoffTimeoutMillis=%d is raised to failoverTimeMillis=%d: a lease is taken from an unresponsive holder only once it has stopped by its own clock", p.GracefulLeaseHandoffTimeout.Milliseconds(), p.FailoverTime.Milliseconds()))
	}
	if p.CallProcessRecordsEvenForEmptyRecordList {
		out = append(out, "callProcessRecordsEvenForEmptyRecordList: kcl does not read empty batches of an open shard, so only the empty last batch of a closed shard is sent")
	}
	if p.ClientVersion == properties.ClientVersionCompatibleWith2x {
		out = append(out, "clientVersionConfig=CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X: kcl reads and writes the KCL 2.x lease format in every mode; nothing to migrate")
	}
	return out
}

// randomUUID returns a random (version 4) UUID, as KCL's default worker id.
func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// coordination maps kclCoordination (and kclFleetFailoverTimeMillis) onto
// the Worker's coordination.
func coordination(p *properties.Config) consumer.Option {
	switch p.Coordination {
	case "fleet":
		return consumer.WithCoordination(consumer.CoordinationFleet())
	case "kcl":
		return consumer.WithCoordination(consumer.CoordinationKCL())
	}
	return consumer.WithCoordination(consumer.CoordinationAuto())
}
