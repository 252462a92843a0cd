package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
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
// (startProcessors). Each runs under a supervisor as in production (the
// compose file's restart: unless-stopped): a replica whose run ends for any
// reason — it lost its lease while a NATS node was killed, or an error such
// as the lease bucket unreadable during a leader election — is started
// again, from its checkpoint, as a standby. Every end of a run is logged
// with its time and error. killActive kills the replica holding the lease
// as kill -9 would
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
	restarts map[string]int // why a run ended, and how often it was started again after it
	lastErr  string         // how the last run ended
	cancel   context.CancelFunc
	done     chan error
}

// restartDelay is the supervisor's pause before starting a replica again
// (a container's restart takes about as long).
const restartDelay = 500 * time.Millisecond

// runEnd names why a replica's run ended, for the restart counts.
func runEnd(err error) string {
	switch {
	case err == nil:
		return "stopped"
	case errors.Is(err, stream.ErrLeaseLost):
		return "lease lost"
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return "context"
	default:
		return "error"
	}
}

// logWriter writes each line to the test's log, stamped and prefixed (the
// replicas' own logs, for a failure that needs them).
type logWriter struct {
	t      *testing.T
	prefix string
}

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Logf("%s %s %s", time.Now().Format("15:04:05.000"), w.prefix, strings.TrimRight(string(b), "\n"))
	return len(b), nil
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

// start runs a replica under its supervisor until it is killed or ctx
// ends. done receives the last run's error.
func (p *processorPair) start(name string) {
	t := p.t
	rctx, rcancel := context.WithCancel(p.ctx)
	r := &processReplica{cancel: rcancel, done: make(chan error, 1), restarts: map[string]int{}}
	p.replicas[name] = r
	// The lease's changes hands at Info, the processor's troubles at Warn.
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // logWriter stamps the line
		}
		return a
	}
	leaseLog := slog.New(slog.NewTextHandler(logWriter{t, "replica " + name + ":"}, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: noTime}))
	procLog := slog.New(slog.NewTextHandler(logWriter{t, "replica " + name + ":"}, &slog.HandlerOptions{Level: slog.LevelWarn, ReplaceAttr: noTime}))
	go func() {
		for run := 1; ; run++ {
			began := time.Now()
			rnc, rjs, err := stream.Connect(p.natsURL, "clustertest-"+name)
			if err == nil {
				r.mu.Lock()
				if r.killed {
					// Killed between two runs: this connection was not
					// there to close.
					err = errors.New("killed before the run started")
					rnc.Close()
				}
				r.nc = rnc
				r.mu.Unlock()
			}
			if err == nil {
				rbus := stream.NewBus(rjs)
				var pr *process.Processor
				pr, err = process.New(processConfig(), process.Deps{Bus: rbus, Regions: schemas.DefaultRegions(), Logger: procLog, Registerer: prometheus.NewRegistry()})
				if err == nil {
					err = rbus.RunExclusive(rctx, "process", name, leaseLog, pr.RunLeased)
				}
				rnc.Close()
			}
			r.mu.Lock()
			killed := r.killed
			again := !killed && rctx.Err() == nil
			if again {
				r.restarts[runEnd(err)]++
			}
			r.lastErr = fmt.Sprintf("run %d ended %s after %s: %v", run, time.Now().Format("15:04:05.000"), time.Since(began).Round(time.Millisecond), err)
			r.mu.Unlock()
			t.Logf("%s replica %s: run %d returned after %s (killed %v, restarting %v): %v",
				time.Now().Format("15:04:05.000"), name, run, time.Since(began).Round(time.Millisecond), killed, again, err)
			if !again {
				r.done <- err
				return
			}
			select {
			case <-rctx.Done():
			case <-time.After(restartDelay):
			}
		}
	}()
}

// status describes the replicas for a failure message.
func (p *processorPair) status() string {
	var b strings.Builder
	for _, n := range []string{"A", "B"} {
		r := p.replicas[n]
		if r == nil {
			continue
		}
		r.mu.Lock()
		fmt.Fprintf(&b, "; %s: killed %v, restarts %v, last: %s", n, r.killed, r.restarts, r.lastErr)
		r.mu.Unlock()
	}
	return b.String()
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
				p.t.Fatalf("%s nobody holds the processor's lease%s", time.Now().Format("15:04:05.000"), p.status())
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
	p.t.Logf("%s killed replica %s (holding the lease)", killed.Format("15:04:05.000"), name)
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
		t.Fatalf("%s nobody took the processor's lease within 30 s of %s's kill (holder %q)%s", time.Now().Format("15:04:05.000"), p.killed, p.holder(), p.status())
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
	if err := ackFloorReaches(js, schemas.StreamEvents, schemas.ConsumerProcess, last); err != nil {
		t.Fatalf("%s %v (holder %q)%s", time.Now().Format("15:04:05.000"), err, p.holder(), p.status())
	}
	survivor := map[string]string{"A": "B", "B": "A"}[p.killed]
	r := p.replicas[survivor]
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("replica %s: %v", survivor, err)
	}
	r.done <- nil // for the cleanup
	got := latestIndicators(t, js)
	restarts := map[string]map[string]int{}
	for n, r := range p.replicas {
		r.mu.Lock()
		restarts[n] = r.restarts
		r.mu.Unlock()
	}
	t.Logf("two processors on the cluster during the load: %s (holding the lease) killed, %s held it %s later (lease TTL %s); restarts by why the run ended %v; %d events, %d indicator records",
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
	if err := ackFloorReaches(js, streamName, consumer, seq); err != nil {
		t.Fatal(err)
	}
}

// ackFloorReaches waits up to 3 minutes until a durable consumer of a
// stream acknowledged every message up to seq; the error says where the
// floor stopped.
func ackFloorReaches(js jetstream.JetStream, streamName, consumer string, seq uint64) error {
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
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s ack floor %d, want %d", consumer, floor, seq)
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
