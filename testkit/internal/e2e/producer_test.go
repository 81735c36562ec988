package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kclgo/kcl/testkit/checker"
)

// producer puts checker payloads continuously: every tick one PutRecords
// call holding the next record of every key, so that each key has one put
// in flight at a time and a record is retried, not skipped, when it fails.
type producer struct {
	f    *fixture
	chk  *checker.Checker
	keys []string

	quit chan struct{}
	done chan struct{}
	once sync.Once

	// mu guards the fields below.
	mu      sync.Mutex
	next    []int // next ordinal of each key
	failed  int   // failed calls and records
	lastErr error
}

// startProducer starts putting one record per key every tick until stop or
// the end of the test.
func startProducer(t *testing.T, f *fixture, chk *checker.Checker, keys []string, tick time.Duration) *producer {
	p := &producer{f: f, chk: chk, keys: keys, next: make([]int, len(keys)), quit: make(chan struct{}), done: make(chan struct{})}
	go p.run(tick)
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *producer) run(tick time.Duration) {
	defer close(p.done)
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	for {
		p.putOnce()
		select {
		case <-p.quit:
			return
		case <-ticker.C:
		}
	}
}

// putOnce makes one PutRecords call. The call is never cancelled: a record
// put but not acknowledged would be processed without counting as produced.
func (p *producer) putOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p.mu.Lock()
	entries := make([]types.PutRecordsRequestEntry, len(p.keys))
	for i, k := range p.keys {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: checker.Payload(k, p.next[i])}
	}
	p.mu.Unlock()
	out, err := p.f.kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.f.stream), Records: entries})
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failed++
		p.lastErr = err
		return
	}
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			p.failed++
			p.lastErr = fmt.Errorf("%s: %s", aws.ToString(r.ErrorCode), aws.ToString(r.ErrorMessage))
			continue
		}
		p.next[i]++
		p.chk.Produced(p.keys[i], p.next[i])
	}
}

// stop stops the producer and waits for its last call. It returns the number
// of records acknowledged.
func (p *producer) stop() int {
	p.once.Do(func() {
		close(p.quit)
		<-p.done
	})
	return p.produced()
}

func (p *producer) produced() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, x := range p.next {
		n += x
	}
	return n
}

func (p *producer) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Sprintf("producer: %d failed calls or records, last error %v", p.failed, p.lastErr)
}
