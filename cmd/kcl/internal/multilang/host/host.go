// Package host is the kcl multilang host: a consumer.Worker whose processors
// are MultiLangDaemon child processes, one per shard, driven through the
// child and protocol packages.
package host

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/consumer"
	"github.com/kclgo/kcl/lease"
)

// Config is what a Host needs.
type Config struct {
	// Properties is the validated properties file.
	Properties *properties.Config
	// Kinesis is the Kinesis client of the stream.
	Kinesis consumer.KinesisAPI
	// Store is the lease store; the caller has made sure its table exists.
	Store lease.Store
	// Logger receives the host's entries and every child's stderr lines.
	// Nil means no logging.
	Logger *zap.Logger
	// Hooks are handed to the Worker (consumer.WithHooks).
	Hooks []any
}

// Host runs one Worker whose processors are child processes.
type Host struct {
	cfg Config
}

// New validates cfg and returns a Host; it starts nothing.
func New(cfg Config) (*Host, error) {
	if cfg.Properties == nil || cfg.Kinesis == nil || cfg.Store == nil {
		return nil, errors.New("host: Properties, Kinesis and Store are required")
	}
	return &Host{cfg: cfg}, nil
}

// Run runs the Worker until ctx is cancelled, then stops gracefully:
// shutdownRequested to every child, final checkpoints, leases released,
// children reaped, within the properties' shutdownGraceMillis (or the
// Worker's shutdown timeout when it is unset). It returns nil after a
// graceful stop.
func (h *Host) Run(ctx context.Context) error {
	return errors.New("host: not implemented yet")
}

// Kill kills every child process at once (SIGKILL); a Run in progress then
// returns soon. It is for a second interrupt signal.
func (h *Host) Kill() {}
