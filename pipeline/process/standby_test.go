package process

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// replica is a processor started under stream.RunExclusive, as `epiwatch
// process` runs it.
type replica struct {
	p      *Processor
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func startReplica(t *testing.T, url, name string, cfg Config, h hooks) *replica {
	t.Helper()
	nc, js, err := stream.Connect(url, "replica-"+name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := New(cfg, Deps{Bus: stream.NewBus(js), Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	p.hooks = h
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{p: p, nc: nc, cancel: cancel, done: make(chan struct{})}
	go func() { r.err = stream.NewBus(js).RunExclusive(ctx, "process", name, nil, p.RunLeased); close(r.done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
		}
		nc.Close()
	})
	return r
}

// holder returns who holds the processor's lease ("" if nobody).
func holder(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), schemas.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), "lease.process")
	if err != nil {
		return ""
	}
	return string(e.Value())
}

// TestStandbyTakesOver: two processors on one stream, one active and one
// hot standby that consumes nothing; kill -9 the active one in the middle of
// the load (its connection cut, no final checkpoint, no lease release): the
// standby takes over when the lease expires, from the last checkpoint, and
// the indicators equal those of an uninterrupted run. The takeover time is
// logged (the README's figure is the production TTL's).
func TestStandbyTakesOver(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	// A short lease for the test (the bucket's TTL is the lease's);
	// EPIWATCH_TEST_LEASE_TTL=6s measures the production default.
	ttl := 2 * time.Second
	if v := os.Getenv("EPIWATCH_TEST_LEASE_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("EPIWATCH_TEST_LEASE_TTL: %v", err)
		}
		ttl = d
	}
	shortLeases(t, s, ttl)
	evs := simulate(11, []string{"KZ-75", "KZ-71", "KG-GB"}, 40)
	half := len(evs) / 2
	publishEvents(t, s.JS, evs[:half])
	cfg := testConfig()
	cfg.BatchSize = 64
	cfg.CheckpointBatches = 3
	cfg.CheckpointInterval = time.Hour

	a := startReplica(t, s.URL, "A", cfg, hooks{})
	deadline := time.Now().Add(10 * time.Second)
	for holder(t, s.JS) != "A" {
		if time.Now().After(deadline) {
			t.Fatal("A never took the lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := startReplica(t, s.URL, "B", cfg, hooks{})
	time.Sleep(300 * time.Millisecond)
	// Kill A in the middle of its work.
	a.nc.Close()
	a.cancel()
	<-a.done
	killed := time.Now()
	b.p.mu.Lock()
	standbyApplied := b.p.appliedSeq
	b.p.mu.Unlock()
	if standbyApplied != 0 {
		t.Errorf("the standby applied events (to sequence %d) while A was active", standbyApplied)
	}
	lastSeq := publishEvents(t, s.JS, evs[half:])
	for holder(t, s.JS) != "B" {
		if time.Since(killed) > 5*ttl {
			t.Fatalf("B did not take over within %s", 5*ttl)
		}
		time.Sleep(20 * time.Millisecond)
	}
	takeover := time.Since(killed)
	waitProcessed(t, s.JS, lastSeq)
	t.Logf("takeover %s after kill -9 of the active processor (lease TTL %s)", takeover.Round(10*time.Millisecond), ttl)
	b.cancel()
	<-b.done
	if b.err != nil {
		t.Fatalf("B: %v", b.err)
	}
	got := latest(t, readIndicators(t, s.JS))

	// The same events through one uninterrupted processor.
	ref := streamtest.New(t)
	publishEvents(t, ref.JS, evs)
	r := startProcessor(t, ref.URL, cfg, nil)
	waitProcessed(t, ref.JS, lastSeq)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	want := latest(t, readIndicators(t, ref.JS))
	if diff := diffContent(want, got); len(diff) > 0 {
		t.Errorf("%d of %d records differ from an uninterrupted run, e.g. %v", len(diff), len(want), diff[:min(5, len(diff))])
	}
}

// diffContent is diffLatest ignoring ComputedAt (the stream time of the
// newest event, which differs between two servers fed the same events).
func diffContent(want, got map[string]indicatorRecord) []string {
	strip := func(m map[string]indicatorRecord) map[string]indicatorRecord {
		out := make(map[string]indicatorRecord, len(m))
		for k, r := range m {
			in := r.ind
			in.ComputedAt = time.Time{}
			b, _ := json.Marshal(in)
			out[k] = indicatorRecord{ind: in, data: b, seq: r.seq}
		}
		return out
	}
	return diffLatest(strip(want), strip(got))
}

// shortLeases recreates the leases bucket with a test's TTL (the bucket's TTL
// is the lease's).
func shortLeases(t *testing.T, s *streamtest.Server, ttl time.Duration) {
	t.Helper()
	ctx := context.Background()
	if err := s.JS.DeleteKeyValue(ctx, schemas.BucketLeases); err != nil {
		t.Fatal(err)
	}
	if _, err := s.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: schemas.BucketLeases, History: 1, TTL: ttl}); err != nil {
		t.Fatal(err)
	}
}

// TestLostLeaseWritesNothing: the active processor stalls in the middle of
// a batch (a long GC pause, a frozen VM) while another replica takes its
// lease. When it wakes up it must not write the checkpoint it was about to
// write, nor publish anything more: it stops, and the batch in hand stays
// unacknowledged for the new holder.
func TestLostLeaseWritesNothing(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	ctx := context.Background()
	shortLeases(t, s, 2*time.Second)
	publishEvents(t, s.JS, simulate(12, []string{"KZ-75", "KZ-71"}, 20))
	cfg := testConfig()
	cfg.BatchSize = 64
	cfg.CheckpointBatches = 1
	cfg.CheckpointInterval = time.Hour

	stalled, resume := make(chan struct{}), make(chan struct{})
	first := true
	a := startReplica(t, s.URL, "A", cfg, hooks{beforeCheckpoint: func() error {
		if first {
			first = false
			close(stalled)
			<-resume
		}
		return nil
	}})
	select {
	case <-stalled:
	case <-time.After(10 * time.Second):
		t.Fatal("A never reached its first checkpoint")
	}
	// While A sleeps, its lease passes to another replica.
	s.TakeLease("process", "C")
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(a.p.lease.Check(), stream.ErrLeaseLost) {
		if time.Now().After(deadline) {
			t.Fatal("A never noticed it lost the lease")
		}
		time.Sleep(20 * time.Millisecond)
	}
	published := len(readIndicators(t, s.JS))
	close(resume)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("A kept running after losing its lease")
	}
	if !errors.Is(a.err, stream.ErrLeaseLost) {
		t.Errorf("A returned %v, want the lease lost", a.err)
	}
	state, err := s.JS.KeyValue(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	if e, err := state.Get(ctx, manifestKey); err == nil {
		t.Errorf("A wrote a checkpoint manifest (revision %d) after losing its lease: %s", e.Revision(), e.Value())
	}
	if n := len(readIndicators(t, s.JS)); n != published {
		t.Errorf("A published %d indicator records after losing its lease", n-published)
	}
}
