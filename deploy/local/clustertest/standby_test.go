package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// processorPair is two `process` replicas on the 3-node NATS cluster, one
// active under the lease and one hot standby, started before the load
// (startProcessors). Each runs under a supervisor as in production: a
// replica that stops because it lost its lease (renewals failing while a
// NATS node is killed) is started again, from its checkpoint, as a
// standby. killActive kills the replica holding the lease as kill -9 would
// (connection closed: no release, no final checkpoint; not restarted);
// finish waits for the other to take over and work through every event,
// and requires the indicators to equal want: one uninterrupted processor's
// on a single embedded server sent the same events through the same ingest
// API (singleNodeRun).
type processorPair struct {
	t        *testing.T
	natsURL  string
	ctx      context.Context
	cancel   context.CancelFunc
	replicas map[string]*processReplica
	leases   jetstream.KeyValue
	killed   string
	takeover chan time.Duration // from the kill to the other holding the lease
}

type processReplica struct {
	mu       sync.Mutex
	nc       *nats.Conn // of the current run
	killed   bool
	restarts int // after a lost lease
	cancel   context.CancelFunc
	done     chan error
}

// startProcessors starts A, waits until it holds the lease, then starts B.
func startProcessors(t *testing.T, natsURL string) *processorPair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	p := &processorPair{t: t, natsURL: natsURL, ctx: ctx, cancel: cancel, replicas: map[string]*processReplica{},
		takeover: make(chan time.Duration, 1)}
	nc, js, err := stream.Connect(natsURL, "clustertest-lease")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if p.leases, err = js.KeyValue(ctx, schemas.BucketLeases); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cancel()
		for _, r := range p.replicas {
			r.cancel()
			<-r.done
		}
	})
	p.start("A")
	p.waitHolder("A", 30*time.Second)
	p.start("B")
	return p
}

// start runs a replica under its supervisor until it is killed, ctx ends
// or it fails for another reason than a lost lease.
func (p *processorPair) start(name string) {
	rctx, rcancel := context.WithCancel(p.ctx)
	r := &processReplica{cancel: rcancel, done: make(chan error, 1)}
	p.replicas[name] = r
	go func() {
		for {
			rnc, rjs, err := stream.Connect(p.natsURL, "clustertest-"+name)
			if err != nil {
				r.done <- err
				return
			}
			r.mu.Lock()
			r.nc = rnc
			r.mu.Unlock()
			rbus := stream.NewBus(rjs)
			pr, err := process.New(processConfig(), process.Deps{Bus: rbus, Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
			if err == nil {
				err = rbus.RunExclusive(rctx, "process", name, nil, pr.RunLeased)
			}
			rnc.Close()
			r.mu.Lock()
			again := errors.Is(err, stream.ErrLeaseLost) && !r.killed && rctx.Err() == nil
			if again {
				r.restarts++
			}
			r.mu.Unlock()
			if !again {
				r.done <- err
				return
			}
		}
	}()
}

// holder is who holds the processor's lease now ("" if nobody, or the
// bucket cannot be read).
func (p *processorPair) holder() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	e, err := p.leases.Get(ctx, "lease.process")
	if err != nil {
		return ""
	}
	return string(e.Value())
}

func (p *processorPair) waitHolder(name string, within time.Duration) time.Duration {
	p.t.Helper()
	began := time.Now()
	for p.holder() != name {
		if time.Since(began) > within {
			p.t.Fatalf("%s did not take the processor's lease within %s (holder %q)", name, within, p.holder())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(began)
}

// killActive kills the replica holding the lease, as kill -9 would.
func (p *processorPair) killActive() {
	p.t.Helper()
	name := ""
	for deadline := time.Now().Add(30 * time.Second); name == ""; {
		if name = p.holder(); name == "" {
			if time.Now().After(deadline) {
				p.t.Fatal("nobody holds the processor's lease")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	r := p.replicas[name]
	r.mu.Lock()
	r.killed = true
	r.nc.Close()
	r.mu.Unlock()
	killed := time.Now()
	p.killed = name
	other := map[string]string{"A": "B", "B": "A"}[name]
	go func() {
		for p.holder() != other && p.ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
		p.takeover <- time.Since(killed)
	}()
	r.cancel()
	<-r.done
	r.done <- nil // for the cleanup
}

// finish waits for the survivor to hold the lease and acknowledge every
// event, stops it and compares the indicators with want.
func (p *processorPair) finish(want map[string]string) {
	t := p.t
	t.Helper()
	var takeover time.Duration
	select {
	case takeover = <-p.takeover:
	case <-time.After(30 * time.Second):
		t.Fatalf("nobody took the processor's lease within 30 s of %s's kill (holder %q)", p.killed, p.holder())
	}
	nc, js, err := stream.Connect(p.natsURL, "clustertest-process")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	st, err := js.Stream(p.ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(p.ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	waitAckFloor(t, js, schemas.StreamEvents, schemas.ConsumerProcess, last)
	survivor := map[string]string{"A": "B", "B": "A"}[p.killed]
	r := p.replicas[survivor]
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("replica %s: %v", survivor, err)
	}
	r.done <- nil // for the cleanup
	got := latestIndicators(t, js)
	restarts := map[string]int{}
	for n, r := range p.replicas {
		r.mu.Lock()
		restarts[n] = r.restarts
		r.mu.Unlock()
	}
	t.Logf("two processors on the cluster during the load: %s (holding the lease) killed, %s held it %s later (lease TTL %s); restarts after a lost lease %v; %d events, %d indicator records",
		p.killed, survivor, takeover.Round(10*time.Millisecond), stream.DefaultLeaseTTL, restarts, last, len(got))

	var diff []string
	for k, w := range want {
		if got[k] != w {
			diff = append(diff, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	if len(want) < 100 || len(diff) > 0 {
		t.Errorf("%d of %d records differ from one uninterrupted processor, e.g. %v", len(diff), len(want), diff[:min(5, len(diff))])
	}
}

// waitAckFloor waits until a durable consumer of a stream acknowledged
// every message up to seq.
func waitAckFloor(t *testing.T, js jetstream.JetStream, streamName, consumer string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := js.Consumer(ctx, streamName, consumer)
		var floor uint64
		if err == nil {
			if info, err := c.Info(ctx); err == nil {
				floor = info.AckFloor.Stream
			}
		}
		cancel()
		if floor >= seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s ack floor %d, want %d", consumer, floor, seq)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// latestIndicators reads the indicators stream: the newest record of each
// region and day, as JSON without computed_at (the stream time of the
// newest event, which differs between two servers fed the same events).
func latestIndicators(t *testing.T, js jetstream.JetStream) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := stream.NewBus(js)
	st, err := js.Stream(ctx, schemas.StreamIndicators)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if info.State.Msgs == 0 {
		return out
	}
	r, err := bus.Reader(ctx, schemas.StreamIndicators, stream.ReadSpec{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	for read := uint64(0); read < info.State.LastSeq; {
		msgs, err := r.Fetch(1000, 5*time.Second)
		if err != nil || len(msgs) == 0 {
			t.Fatalf("read indicators at %d of %d: %v", read, info.State.LastSeq, err)
		}
		for _, m := range msgs {
			var in schemas.Indicator
			if err := json.Unmarshal(m.Data, &in); err != nil {
				t.Fatalf("indicator at %d: %v", m.Seq, err)
			}
			in.ComputedAt = time.Time{}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			out[in.Key()] = string(b)
			read = m.Seq
		}
	}
	return out
}
