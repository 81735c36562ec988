package consumer

import (
	"fmt"
	"time"
)

// Option configures the Worker. Options are applied in order and validated
// together when the Worker is created; an invalid option makes the
// constructor return an error naming it.
type Option func(*config)

// config holds every setting an Option can change. Defaults are set in
// defaultConfig and nowhere else.
type config struct {
	retryLimit       int
	retryBase        time.Duration
	retryMax         time.Duration
	errorHandler     ErrorHandler
	handlerSet       bool
	checkpointPolicy CheckpointPolicy
}

// Defaults, documented on the options that change them.
const (
	defaultRetryBase = 100 * time.Millisecond
	defaultRetryMax  = 30 * time.Second
)

func defaultConfig() config {
	return config{
		retryLimit:       0, // retry forever
		retryBase:        defaultRetryBase,
		retryMax:         defaultRetryMax,
		checkpointPolicy: CheckpointManual(),
	}
}

// newConfig applies opts over the defaults and validates the result. nil
// options are ignored.
func newConfig(opts ...Option) (config, error) {
	c := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if err := c.validate(); err != nil {
		return config{}, err
	}
	return c, nil
}

func (c *config) validate() error {
	if c.retryLimit < 0 {
		return fmt.Errorf("consumer: WithRetryLimit(%d): limit must not be negative (0 retries forever)", c.retryLimit)
	}
	if c.retryBase <= 0 {
		return fmt.Errorf("consumer: WithRetryBackoff(%v, %v): base must be positive", c.retryBase, c.retryMax)
	}
	if c.retryMax < c.retryBase {
		return fmt.Errorf("consumer: WithRetryBackoff(%v, %v): max must not be less than base", c.retryBase, c.retryMax)
	}
	if c.handlerSet && c.errorHandler == nil {
		return fmt.Errorf("consumer: WithErrorHandler(nil): handler must not be nil")
	}
	if c.handlerSet && c.retryLimit == 0 {
		return fmt.Errorf("consumer: WithErrorHandler needs WithRetryLimit above 0: with the default limit of 0 a failing batch is retried forever and the handler is never called")
	}
	if err := c.checkpointPolicy.validate(); err != nil {
		return fmt.Errorf("consumer: WithCheckpointPolicy(%v): %w", c.checkpointPolicy, err)
	}
	return nil
}

// WithRetryLimit sets how many times a batch whose ProcessRecords call
// failed (returned an error or panicked) is delivered again before the
// ErrorHandler decides what to do with it. The default, 0, retries forever:
// a batch is never skipped. n must not be negative. With a limit and no
// WithErrorHandler the Worker stops the shard (StopShard) once the retries
// are used up.
func WithRetryLimit(n int) Option {
	return func(c *config) { c.retryLimit = n }
}

// WithErrorHandler sets the function that decides, once a batch has failed
// on every retry allowed by WithRetryLimit, whether to Retry it, Skip it or
// StopShard. It requires a retry limit above 0, since without one the
// handler would never be called. h must not be nil. The default, used when
// a limit is set without a handler, always returns StopShard.
func WithErrorHandler(h ErrorHandler) Option {
	return func(c *config) { c.errorHandler, c.handlerSet = h, true }
}

// WithRetryBackoff sets the delays between deliveries of a failing batch:
// the n-th retry waits a random duration between half of and the whole of
// base·2ⁿ, capped at max, so that retries slow down and spread out. base
// must be positive and max at least base. The defaults are 100ms and 30s.
func WithRetryBackoff(base, max time.Duration) Option {
	return func(c *config) { c.retryBase, c.retryMax = base, max }
}

// WithCheckpointPolicy sets when the Worker checkpoints on the processor's
// behalf. The default is CheckpointManual(). Whatever the policy, the Worker
// writes SHARD_END at the end of a closed shard itself.
func WithCheckpointPolicy(p CheckpointPolicy) Option {
	return func(c *config) { c.checkpointPolicy = p }
}
