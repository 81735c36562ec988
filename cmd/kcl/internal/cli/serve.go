package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.uber.org/zap"
)

// errKilled is serve's error after a second signal.
var errKilled = errors.New("stopped at once by a second signal; children killed")

// serve calls run with a context that the first signal on sigs cancels
// (graceful stop) and returns what run returns; a run that ends with
// context.Canceled after that signal stopped gracefully and serve returns
// nil. A second signal calls kill and makes serve return errKilled at once,
// without waiting for run.
func serve(ctx context.Context, sigs <-chan os.Signal, log *zap.Logger, run func(context.Context) error, kill func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopping := false
	for {
		select {
		case err := <-done:
			if err != nil && stopping && errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case sig := <-sigs:
			if !stopping {
				stopping = true
				log.Info("stopping gracefully; a second signal stops at once", zap.Stringer("signal", sig))
				cancel()
				continue
			}
			log.Warn("stopping at once: killing every child", zap.Stringer("signal", sig))
			kill()
			return fmt.Errorf("%w (%s)", errKilled, sig)
		}
	}
}
