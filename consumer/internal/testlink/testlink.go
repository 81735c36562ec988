// Package testlink lets package consumertest build a consumer.Checkpointer
// over a Tracker of its own, although the Checkpointer's only field is
// unexported. Package consumer sets NewCheckpointer when it is initialized;
// being internal to consumer, this package can be imported only by consumer
// and the packages under it, so no processor can reach it.
package testlink

import "github.com/kclgo/kcl/internal/checkpointing"

// NewCheckpointer returns a *consumer.Checkpointer over t (typed any because
// this package cannot import consumer, which imports it). Package consumer
// sets it in its init; it is nil before that.
var NewCheckpointer func(t *checkpointing.Tracker) any
