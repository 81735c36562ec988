package scenario

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// settingsFile holds what a run's checker depends on besides the logs, for
// CheckDir.
const settingsFile = "settings.json"

type settings struct {
	Coordination string `json:"coordination"`
	FailoverTime string `json:"failover_time"` // a time.Duration's String
}

func writeSettings(dir string, s settings) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, settingsFile), append(b, '\n'), 0o644)
}

// runFailoverTime returns the failover time of the run that left dir: from
// its settings file, or 3 s, the lease duration of the runs that wrote
// none.
func runFailoverTime(dir string) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(dir, settingsFile))
	if errors.Is(err, os.ErrNotExist) {
		return 3 * time.Second, nil
	}
	if err != nil {
		return 0, err
	}
	var s settings
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("scenario: %s: %w", filepath.Join(dir, settingsFile), err)
	}
	d, err := time.ParseDuration(s.FailoverTime)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("scenario: %s: failover_time %q is not a positive duration", filepath.Join(dir, settingsFile), s.FailoverTime)
	}
	return d, nil
}

// The coordination a worker process chose, as consumer logs it: the
// "coordination" message's mode (JSON from the Go workers, the console
// format from multilang hosts; either way the mode's words are in the
// line).
const (
	modeFleet    = "kcl fleet"
	modePerLease = "KCL-compatible"
)

// readWorkerLogs reads the workers' own logs (w*.stderr, every process of
// a worker appended to one file) and counts the processes by the
// coordination they chose, and each worker's leaderships (the leader
// elector's "leading" message).
func readWorkerLogs(dir string) (modes, leaderships map[string]int, err error) {
	paths, err := filepath.Glob(filepath.Join(dir, "w*.stderr"))
	if err != nil {
		return nil, nil, err
	}
	modes, leaderships = map[string]int{}, map[string]int{}
	for _, p := range paths {
		id := strings.TrimSuffix(filepath.Base(p), ".stderr")
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case logMessage(line, "coordination"):
				for _, m := range []string{modeFleet, modePerLease} {
					if strings.Contains(line, m) {
						modes[m]++
					}
				}
			case logMessage(line, "leading"):
				leaderships[id]++
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("scenario: reading %s: %w", p, err)
		}
	}
	return modes, leaderships, nil
}

// logMessage reports whether a zap log line, JSON or console, has message
// msg.
func logMessage(line, msg string) bool {
	return strings.Contains(line, `"msg":"`+msg+`"`) || strings.Contains(line, "\t"+msg+"\t")
}

// coordinationProblems returns what is wrong with the coordination the
// worker processes chose (modes, from readWorkerLogs) when they were told
// coordination: on the run's new table, the Worker's default (auto) must
// choose kcl fleet mode, as "fleet" requires; "kcl" logs no choice.
func coordinationProblems(coordination string, modes map[string]int) []string {
	switch {
	case coordination == "kcl" && len(modes) > 0:
		return []string{fmt.Sprintf("workers told to renew each lease logged a coordination choice: %v", modes)}
	case coordination != "kcl" && modes[modePerLease] > 0:
		return []string{fmt.Sprintf("%d worker processes chose %s coordination on the run's new table (-coordination %s); want %s",
			modes[modePerLease], modePerLease, coordination, modeFleet)}
	case coordination != "kcl" && modes[modeFleet] == 0:
		return []string{fmt.Sprintf("no worker process logged its coordination choice (-coordination %s)", coordination)}
	}
	return nil
}
