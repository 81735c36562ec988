package streams

import "time"

// SetBusyTimeout sets busyTimeout for a test and returns the old value.
func SetBusyTimeout(d time.Duration) time.Duration {
	old := busyTimeout
	busyTimeout = d
	return old
}
