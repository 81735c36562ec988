package main

import (
	"strings"
	"testing"
)

func TestParseExpositionReadsKCLSamples(t *testing.T) {
	text := `# HELP kcl_records_processed_total User records.
# TYPE kcl_records_processed_total counter
kcl_records_processed_total{shard="shardId-000000000001",stream="s",worker="w1"} 412
kcl_max_behind_latest_seconds{stream="s",worker="w1"} 1.5
kcl_processing_seconds_bucket{stream="s",worker="w1",le="+Inf"} 7
go_goroutines 12
`
	got, err := parseExposition(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d samples %+v, want the 3 kcl_ ones", len(got), got)
	}
	if s := got[0]; s.name != "kcl_records_processed_total" || s.value != 412 || s.labels["shard"] != "shardId-000000000001" || s.labels["worker"] != "w1" {
		t.Errorf("first sample %+v", s)
	}
	if s := got[1]; s.name != "kcl_max_behind_latest_seconds" || s.value != 1.5 {
		t.Errorf("second sample %+v", s)
	}
}
