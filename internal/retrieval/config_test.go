package retrieval

import (
	"errors"
	"testing"
	"time"

	"github.com/kclgo/kcl/checkpoint"
	"github.com/kclgo/kcl/hashkey"
	"github.com/kclgo/kcl/testkit/fakekinesis"
)

func TestNewValidatesConfig(t *testing.T) {
	seq, _ := checkpoint.At("49590000000000000000000000000000000000000000000000000001", 2)
	tests := []struct {
		name  string
		edit  func(*pollConfig)
		field string // "" when valid
	}{
		{"the defaults are valid", func(*pollConfig) {}, ""},
		{"a stream ARN alone names the stream", func(c *pollConfig) {
			c.StreamName, c.StreamARN = "", "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
		}, ""},
		{"a stream is required", func(c *pollConfig) { c.StreamName = "" }, "StreamName"},
		{"a shard is required", func(c *pollConfig) { c.ShardID = "" }, "ShardID"},
		{"a start position is required", func(c *pollConfig) { c.Start = checkpoint.Position{} }, "Start"},
		{"a finished shard has nothing to fetch", func(c *pollConfig) { c.Start = checkpoint.ShardEnd }, "Start"},
		{"a sequence position is a start", func(c *pollConfig) { c.Start = seq }, ""},
		{"AT_TIMESTAMP needs a timestamp", func(c *pollConfig) { c.Start = checkpoint.AtTimestamp }, "Timestamp"},
		{"AT_TIMESTAMP with a timestamp is valid", func(c *pollConfig) { c.Start, c.Timestamp = checkpoint.AtTimestamp, time.Unix(1, 0) }, ""},
		{"a timestamp without AT_TIMESTAMP is a mistake", func(c *pollConfig) { c.Timestamp = time.Unix(1, 0) }, "Timestamp"},
		{"MaxRecords above the GetRecords limit", func(c *pollConfig) { c.MaxRecords = 10001 }, "MaxRecords"},
		{"negative MaxRecords", func(c *pollConfig) { c.MaxRecords = -1 }, "MaxRecords"},
		{"IdleTime below 200ms", func(c *pollConfig) { c.IdleTime = 199 * time.Millisecond }, "IdleTime"},
		{"negative MaxBatches", func(c *pollConfig) { c.MaxBatches = -1 }, "MaxBatches"},
		{"negative MaxBytes", func(c *pollConfig) { c.MaxBytes = -1 }, "MaxBytes"},
		{"negative BackoffBase", func(c *pollConfig) { c.BackoffBase = -1 }, "BackoffBase"},
		{"BackoffMax below BackoffBase", func(c *pollConfig) { c.BackoffBase, c.BackoffMax = time.Second, time.Millisecond }, "BackoffMax"},
		{"an empty hash range", func(c *pollConfig) { c.HashRange = &hashkey.Range{Start: hashkey.Max} }, "HashRange"},
	}
	fk := fakekinesis.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pollConfig{Config: Config{Shard: Shard{StreamName: "orders", ShardID: shard0, Start: checkpoint.TrimHorizon}}}
			tt.edit(&cfg)
			f, err := newFetcher(fk, cfg)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) || f != nil {
				t.Fatalf("New = %v, %v; want a ConfigError for %s", f, err, tt.field)
			}
		})
	}
	if _, err := newFetcher(nil, pollConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("New(nil) = %v", err)
	}
}

func TestDefaults(t *testing.T) {
	f, err := newFetcher(fakekinesis.New(), pollConfig{Config: Config{Shard: Shard{StreamName: "orders", ShardID: shard0, Start: checkpoint.Latest}}})
	if err != nil {
		t.Fatal(err)
	}
	c := pollConfig{f.cfg, f.poll}
	if c.MaxRecords != 10000 || c.IdleTime != time.Second || c.MaxBatches != 3 || c.MaxBytes != 8<<20 ||
		c.BackoffBase != DefaultBackoffBase || c.BackoffMax != DefaultBackoffMax {
		t.Errorf("defaults %+v", c)
	}
}

func TestNewReaderBuildsTheReaderOfTheMode(t *testing.T) {
	shard := Shard{StreamName: "orders", ShardID: shard0, Start: checkpoint.TrimHorizon}
	fk := fakekinesis.New()
	if r, err := NewReader(fk, Config{Shard: shard, Mode: Polling{}}); err != nil {
		t.Errorf("Polling: %v", err)
	} else if _, ok := r.(*Fetcher); !ok {
		t.Errorf("Polling built a %T, want a *Fetcher", r)
	}
	if r, err := NewReader(fk, Config{Shard: shard, Mode: FanOut{ConsumerARN: "arn:c"}}); err != nil {
		t.Errorf("FanOut: %v", err)
	} else if _, ok := r.(*Subscriber); !ok {
		t.Errorf("FanOut built a %T, want a *Subscriber", r)
	}
	tests := []struct {
		name  string
		api   API
		mode  Mode
		field string
	}{
		{"a mode is required", fk, nil, "Mode"},
		{"enhanced fan-out needs SubscribeToShard", noDescribe{fk}, FanOut{ConsumerARN: "arn:c"}, "api"},
		{"a polling API is enough for polling", noDescribe{fk}, Polling{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReader(tt.api, Config{Shard: shard, Mode: tt.mode})
			if tt.field == "" {
				if err != nil {
					t.Fatalf("NewReader: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !errors.Is(err, ErrInvalidConfig) || r != nil {
				t.Fatalf("NewReader = %v, %v; want a ConfigError for %s", r, err, tt.field)
			}
		})
	}
}

func TestNewReaderKeepsItsOwnHashRange(t *testing.T) {
	hr := hashkey.Range{End: hashkey.Max}
	cfg := pollConfig{Config: Config{Shard: Shard{StreamName: "orders", ShardID: shard0, Start: checkpoint.Latest, HashRange: &hr}}}
	f, err := newFetcher(fakekinesis.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hr.End = hashkey.Key{} // the lease's range changes after the Reader was built
	if got := *f.cfg.HashRange; got != (hashkey.Range{End: hashkey.Max}) {
		t.Errorf("the Reader's hash range followed the caller's: %v", got)
	}
}
