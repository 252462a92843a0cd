package clustertest

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// processorsOnCluster runs two `process` replicas (one active under the
// lease, one hot standby) on the 3-node NATS cluster over the events the
// sink test left in the 3-replica events stream, kills the active one in
// the middle of its work (connection cut, no release, no final
// checkpoint), and requires the standby to take over and the indicators
// to equal those of one uninterrupted processor over the same events (on
// an embedded server fed a copy of the stream, sequence for sequence). The
// takeover time is the production lease TTL's (6 s) on real NATS.
func processorsOnCluster(t *testing.T, natsURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	nc, js, err := stream.Connect(natsURL, "clustertest-process")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bus := stream.NewBus(js)
	st, err := js.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := info.State.LastSeq
	if info.State.FirstSeq != 1 || last < 10000 {
		t.Fatalf("events stream %+v: want the sink test's events from sequence 1", info.State)
	}

	cfg := process.DefaultConfig()
	cfg.AckWait = 5 * time.Second // the killed replica's batch comes back soon
	cfg.CheckpointInterval = time.Second
	type replica struct {
		nc     *nats.Conn
		cancel context.CancelFunc
		done   chan error
	}
	start := func(name string) *replica {
		t.Helper()
		rnc, rjs, err := stream.Connect(natsURL, "clustertest-"+name)
		if err != nil {
			t.Fatal(err)
		}
		rbus := stream.NewBus(rjs)
		p, err := process.New(cfg, process.Deps{Bus: rbus, Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		r := &replica{nc: rnc, cancel: rcancel, done: make(chan error, 1)}
		go func() { r.done <- rbus.RunExclusive(rctx, "process", name, nil, p.RunLeased) }()
		return r
	}
	leases, err := bus.KV(ctx, schemas.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		e, err := leases.Get(ctx, "lease.process")
		if err != nil {
			return ""
		}
		return string(e.Value)
	}
	waitHolder := func(name string, within time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		for holder() != name {
			if time.Since(began) > within {
				t.Fatalf("%s did not take the processor's lease within %s (holder %q)", name, within, holder())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(began)
	}

	a := start("A")
	waitHolder("A", 30*time.Second)
	b := start("B")
	defer b.nc.Close()
	defer b.cancel()
	time.Sleep(time.Second)
	a.nc.Close() // kill -9: no release, no final checkpoint
	a.cancel()
	<-a.done
	takeover := waitHolder("B", 30*time.Second)
	waitAckFloor(t, js, last)
	b.cancel()
	if err := <-b.done; err != nil {
		t.Fatalf("standby B: %v", err)
	}
	got := latestIndicators(t, js)
	t.Logf("two processors on the cluster: B took over %s after kill -9 of A (lease TTL %s); %d events, %d indicator records",
		takeover.Round(10*time.Millisecond), stream.DefaultLeaseTTL, last, len(got))

	// One uninterrupted processor over a copy of the stream.
	ref := streamtest.New(t)
	pub := ref.Bus.Publisher()
	var r *stream.Reader
	empty := 0
	for copied := uint64(0); copied < last; {
		if r == nil {
			if r, err = bus.Reader(ctx, schemas.StreamEvents, stream.ReadSpec{FromSeq: copied + 1}); err != nil {
				t.Fatal(err)
			}
		}
		msgs, err := r.Fetch(1000, 5*time.Second)
		if err != nil || len(msgs) == 0 {
			// An ordered consumer on a cluster can stall after a leader
			// change: read on with a new one from where the copy is.
			if empty++; empty > 3 {
				t.Fatalf("copy the events stream at %d: %d messages, %v", copied, len(msgs), err)
			}
			r.Stop()
			r = nil
			continue
		}
		out := make([]stream.Msg, len(msgs))
		for i, m := range msgs {
			// Its own sequence as the id: every message is stored again,
			// copies of one event_id included, under the same sequence.
			out[i] = stream.Msg{Subject: m.Subject, ID: strconv.FormatUint(m.Seq, 10), Data: m.Data}
		}
		for i, res := range pub.PublishBatch(ctx, out) {
			if res.Err != nil || res.Seq != msgs[i].Seq {
				t.Fatalf("copy sequence %d: stored at %d, %v", msgs[i].Seq, res.Seq, res.Err)
			}
		}
		copied = msgs[len(msgs)-1].Seq
	}
	if r != nil {
		r.Stop()
	}
	p, err := process.New(cfg, process.Deps{Bus: ref.Bus, Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	waitAckFloor(t, ref.JS, last)
	pcancel()
	if err := <-done; err != nil {
		t.Fatalf("reference processor: %v", err)
	}
	want := latestIndicators(t, ref.JS)
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

// waitAckFloor waits until the processor's durable consumer acknowledged
// every event up to seq.
func waitAckFloor(t *testing.T, js jetstream.JetStream, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := js.Consumer(ctx, schemas.StreamEvents, schemas.ConsumerProcess)
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
			t.Fatalf("processor's ack floor %d, want %d", floor, seq)
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
