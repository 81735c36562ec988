package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// shardMetrics follows each shard through the workers' /metrics (the
// Prometheus plugin, plugin/kprom): the demo scrapes every running worker
// every few seconds and once more at the end, and its summary prints, per
// shard, its last holder's counts, its peak throughput and its lag.
type shardMetrics struct {
	mu     sync.Mutex
	shards map[string]*shardStat
}

type shardStat struct {
	holder   string  // the worker that exported it last
	records  float64 // its holder's kcl_records_processed_total at the last scrape
	lag      float64 // kcl_behind_latest_seconds at the last scrape (0 if not held)
	peakLag  float64
	peakRate float64 // records per second between two scrapes, the highest seen
	// last is the previous sample of each (worker, shard) series.
	last map[string]sampleAt
}

type sampleAt struct {
	records float64
	at      time.Time
}

// sample scrapes every worker in addrs (worker id → address).
func (sm *shardMetrics) sample(ctx context.Context, addrs map[string]string) {
	now := time.Now()
	for id, addr := range addrs {
		samples, err := scrape(ctx, addr)
		if err != nil {
			continue // a worker starting or stopping: the next scrape sees it
		}
		sm.mu.Lock()
		if sm.shards == nil {
			sm.shards = make(map[string]*shardStat)
		}
		behind := map[string]float64{}
		for _, s := range samples {
			if s.name == "kcl_behind_latest_seconds" {
				behind[s.labels["shard"]] = s.value
			}
		}
		for _, s := range samples {
			if s.name != "kcl_records_processed_total" {
				continue
			}
			shard := s.labels["shard"]
			st := sm.shards[shard]
			if st == nil {
				st = &shardStat{last: map[string]sampleAt{}}
				sm.shards[shard] = st
			}
			if prev, ok := st.last[id]; ok && s.value >= prev.records && now.After(prev.at) {
				st.peakRate = max(st.peakRate, (s.value-prev.records)/now.Sub(prev.at).Seconds())
			}
			st.last[id] = sampleAt{s.value, now}
			if lag, held := behind[shard]; held {
				st.holder, st.records, st.lag = id, s.value, lag
				st.peakLag = max(st.peakLag, lag)
			}
		}
		sm.mu.Unlock()
	}
}

// print writes the per-shard table.
func (sm *shardMetrics) print() {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if len(sm.shards) == 0 {
		fmt.Println("per shard: no /metrics scraped")
		return
	}
	fmt.Println("per shard, from the workers' /metrics (plugin/kprom; records count since the holder took the shard):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "shard\tlast holder\trecords\tpeak records/s\tlag at end\tpeak lag\t")
	for _, id := range slices.Sorted(maps.Keys(sm.shards)) {
		st := sm.shards[id]
		holder := st.holder
		if holder == "" {
			holder = "—" // finished, or never held at a scrape
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.1f\t%.2fs\t%.2fs\t\n", shortShards([]string{id}), holder, st.records, st.peakRate, st.lag, st.peakLag)
	}
	tw.Flush()
}

// sample is one line of a text exposition.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape GETs http://addr/metrics and returns its kcl_ samples.
func scrape(ctx context.Context, addr string) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseExposition(resp.Body)
}

// parseExposition reads the kcl_ samples of a Prometheus text exposition.
// It is enough for kcl's own series: label values without escapes.
func parseExposition(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "kcl_") {
			continue
		}
		s := sample{labels: map[string]string{}}
		rest := line
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			s.name = line[:i]
			for _, kv := range strings.Split(line[i+1:j], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if ok {
					s.labels[k] = strings.Trim(v, `"`)
				}
			}
			rest = strings.TrimSpace(line[j+1:])
		} else {
			name, v, ok := strings.Cut(line, " ")
			if !ok {
				continue
			}
			s.name, rest = name, v
		}
		if f := strings.Fields(rest); len(f) > 0 {
			v, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				continue
			}
			s.value = v
			out = append(out, s)
		}
	}
	return out, sc.Err()
}
