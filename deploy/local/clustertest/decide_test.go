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
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// decisionMsg is one decision as the decisions stream holds it.
type decisionMsg struct {
	seq    uint64
	token  uint64 // the publisher's lease token (0: none)
	region string
	key    string // region and date
	body   string // the decision as JSON, without decided_at
}

// decidersOnCluster runs two `decide` replicas (data mode: each region's
// days as they become complete) under the lease on the 3-node NATS cluster
// over the indicators the processors left, kills the active one after it
// has published a third of the decisions (connection cut, no release), and
// requires that:
//   - the two never both published a decision for one region and day: the
//     decisions stream holds each region and day once, and no decision with
//     the first replica's lease token follows one with the second's;
//   - the decisions equal those of one uninterrupted decider over the
//     reference's indicators (ref, from singleNodeRun: the same latest
//     indicators, as processorsOnCluster checked).
func decidersOnCluster(t *testing.T, natsURL string, ref *streamtest.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg := decide.DefaultConfig()
	cfg.Mode = decide.ModeData

	// The reference: one decider, uninterrupted, on the single server.
	runOne := func(bus *stream.Bus, js jetstream.JetStream) {
		t.Helper()
		d, err := decide.New(cfg, decide.Deps{Bus: bus, Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		dctx, dcancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- d.Run(dctx) }()
		waitDecided(t, js)
		dcancel()
		if err := <-done; err != nil {
			t.Fatalf("reference decider: %v", err)
		}
	}
	runOne(ref.Bus, ref.JS)
	want := map[string]decisionMsg{}
	for _, m := range readDecisions(ctx, t, ref.Bus, ref.JS) {
		if _, ok := want[m.key]; ok {
			t.Fatalf("the reference decided %s twice", m.key)
		}
		want[m.key] = m
	}
	if len(want) < 50 {
		t.Fatalf("the reference decided only %d region-days", len(want))
	}

	nc, js, err := stream.Connect(natsURL, "clustertest-decide")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	bus := stream.NewBus(js)
	type replica struct {
		nc     *nats.Conn
		cancel context.CancelFunc
		done   chan error
	}
	start := func(name string) *replica {
		t.Helper()
		rnc, rjs, err := stream.Connect(natsURL, "clustertest-decide-"+name)
		if err != nil {
			t.Fatal(err)
		}
		rbus := stream.NewBus(rjs)
		d, err := decide.New(cfg, decide.Deps{Bus: rbus, Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(ctx)
		r := &replica{nc: rnc, cancel: rcancel, done: make(chan error, 1)}
		go func() { r.done <- rbus.RunExclusive(rctx, "decide", name, nil, d.RunLeased) }()
		return r
	}
	decisions, err := js.Stream(ctx, schemas.StreamDecisions)
	if err != nil {
		t.Fatal(err)
	}
	published := func() uint64 {
		info, err := decisions.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}

	leases, err := js.KeyValue(ctx, schemas.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	a := start("A")
	for deadline := time.Now().Add(30 * time.Second); ; {
		if e, err := leases.Get(ctx, "lease.decide"); err == nil && string(e.Value()) == "A" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("decider A did not take the lease within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := start("B")
	defer b.nc.Close()
	defer b.cancel()
	deadline := time.Now().Add(2 * time.Minute)
	for published() < uint64(len(want)/3) {
		if time.Now().After(deadline) {
			t.Fatalf("the deciders published %d decisions in 2 minutes, want %d", published(), len(want)/3)
		}
		time.Sleep(10 * time.Millisecond)
	}
	killedAt := published()
	a.nc.Close() // kill -9: no release
	a.cancel()
	<-a.done
	killed := time.Now()
	waitDecided(t, js)
	b.cancel()
	if err := <-b.done; err != nil {
		t.Fatalf("standby decider: %v", err)
	}

	got := readDecisions(ctx, t, bus, js)
	byKey := map[string][]decisionMsg{}
	tokens := map[uint64]int{}
	for _, m := range got {
		byKey[m.key] = append(byKey[m.key], m)
		tokens[m.token]++
	}
	var twice, differ []string
	for k, ms := range byKey {
		if len(ms) > 1 {
			twice = append(twice, k)
		}
		if w, ok := want[k]; !ok || w.body != ms[0].body {
			differ = append(differ, k)
		}
	}
	for k := range want {
		if _, ok := byKey[k]; !ok {
			differ = append(differ, k)
		}
	}
	sort.Strings(twice)
	sort.Strings(differ)
	if len(twice) > 0 {
		t.Errorf("%d region-days decided more than once on the cluster, e.g. %v", len(twice), twice[:min(5, len(twice))])
	}
	if len(differ) > 0 {
		k := differ[0]
		t.Errorf("%d of %d region-days differ from one uninterrupted decider, e.g. %s:\ncluster   %v\nreference %s", len(differ), len(want), k, byKey[k], want[k].body)
	}
	// Fencing: two tokens, and per region none of the first after the second.
	if len(tokens) != 2 || tokens[0] > 0 {
		t.Errorf("decisions by lease token: %v; want two holders, every decision stamped", tokens)
	}
	var first uint64
	for tok := range tokens {
		if first == 0 || tok < first {
			first = tok
		}
	}
	lastOfFirst, firstOfSecond := map[string]uint64{}, map[string]uint64{}
	for _, m := range got {
		if m.token == first {
			lastOfFirst[m.region] = max(lastOfFirst[m.region], m.seq)
		} else if firstOfSecond[m.region] == 0 {
			firstOfSecond[m.region] = m.seq
		}
	}
	for r, s := range firstOfSecond {
		if lastOfFirst[r] > s {
			t.Errorf("%s: a decision of the killed decider (seq %d) after one of its successor (seq %d)", r, lastOfFirst[r], s)
		}
	}
	t.Logf("two deciders on the cluster: A killed after %d decisions, B finished %s later; %d region-days, each once; by token %v",
		killedAt, time.Since(killed).Round(10*time.Millisecond), len(got), tokens)
}

// waitDecided waits until the decider's consumer acknowledged every
// indicator and the decisions stream has stopped growing for 2 s.
func waitDecided(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ind, err := js.Stream(ctx, schemas.StreamIndicators)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ind.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitAckFloor(t, js, schemas.StreamIndicators, schemas.ConsumerDecide, info.State.LastSeq)
	dec, err := js.Stream(ctx, schemas.StreamDecisions)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	stable := time.Now()
	for time.Since(stable) < 2*time.Second {
		di, err := dec.Info(ctx)
		if err != nil {
			t.Fatalf("decisions stream: %v", err)
		}
		if di.State.LastSeq != last {
			last, stable = di.State.LastSeq, time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// readDecisions reads the decisions stream, in stream order.
func readDecisions(ctx context.Context, t *testing.T, bus *stream.Bus, js jetstream.JetStream) []decisionMsg {
	t.Helper()
	st, err := js.Stream(ctx, schemas.StreamDecisions)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []decisionMsg
	if info.State.Msgs == 0 {
		return out
	}
	for _, m := range readStream(ctx, t, bus, schemas.StreamDecisions, info.State.FirstSeq, info.State.LastSeq) {
		var d schemas.Decision
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatalf("decision at %d: %v", m.Seq, err)
		}
		d.DecidedAt = time.Time{}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := strconv.ParseUint(m.Header.Get(schemas.HeaderLeaseToken), 10, 64)
		out = append(out, decisionMsg{seq: m.Seq, token: tok, region: d.Region, key: d.Region + ":" + d.Date.String(), body: string(b)})
	}
	return out
}
