//go:build race

package scenario

// raceEnabled reports whether the test binary has the race detector; the
// kcl binary of TestScenarioMultilang is built the same way.
const raceEnabled = true
