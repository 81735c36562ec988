//go:build race

package e2e

// raceEnabled is true when the tests run with -race: kcl is then built with
// -race too, and a data race in the host ends it with exit status 66, which
// fails the case that stops it.
const raceEnabled = true
