package decide

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

var d0 = schemas.MustDate("2021-07-01")

func day(n int) schemas.Date { return d0.AddDays(n) }

func fp(v float64) *float64 { return &v }

// ind builds an indicator record of a region reporting cases; occ < 0 means
// "no bed data" (nil).
func ind(region string, n int, version uint64, r, occ float64) schemas.Indicator {
	in := schemas.Indicator{Region: region, Date: day(n), Version: version, RMethod: "cori", Cases7d: 70,
		RMean: fp(r), RQ025: fp(r - 0.1), RQ975: fp(r + 0.1), ComputedAt: time.Unix(1625097600, 0).UTC()}
	if occ >= 0 {
		in.BedOccupancyPct = fp(occ)
	}
	return in
}

func provisional(in schemas.Indicator) schemas.Indicator { in.Provisional = true; return in }

func withFlags(in schemas.Indicator, f ...string) schemas.Indicator { in.Flags = f; return in }

// publish puts indicator records on the indicators stream; msgID "" uses
// the record's own MsgID (the processor's), anything else simulates a
// re-send that JetStream cannot de-duplicate. It returns the highest
// stream sequence acknowledged (a duplicate's is that of the stored copy).
func publish(t *testing.T, js jetstream.JetStream, suffix string, ins ...schemas.Indicator) uint64 {
	t.Helper()
	p := stream.NewBus(js).Publisher()
	var last uint64
	for _, in := range ins {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		r, err := p.PublishSync(context.Background(), stream.Msg{Subject: schemas.IndicatorSubject(in.Region), ID: in.MsgID(b) + suffix, Data: b})
		if err != nil {
			t.Fatalf("publish %s: %v", in.Key(), err)
		}
		last = max(last, r.Seq)
	}
	return last
}

// publishThrough publishes records as the processor does, with the
// schemas.HeaderDataThrough header.
func publishThrough(t *testing.T, js jetstream.JetStream, through schemas.Date, ins ...schemas.Indicator) {
	t.Helper()
	p := stream.NewBus(js).Publisher()
	h := nats.Header{schemas.HeaderDataThrough: {through.String()}}
	for _, in := range ins {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PublishSync(context.Background(), stream.Msg{Subject: schemas.IndicatorSubject(in.Region), ID: in.MsgID(b), Data: b, Header: h}); err != nil {
			t.Fatalf("publish %s: %v", in.Key(), err)
		}
	}
}

// fakeClock is a settable wall clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time)     { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// testConfig is the default configuration with the plan read literally (the
// clause names the tests check), short dwell (3 days), no strengthening
// pause and eight levels, so a test can see several steps without hitting
// the top.
func testConfig(mode string) Config {
	cfg := DefaultConfig()
	cfg.RuleSet = "kz-2020-plan"
	cfg.Mode = mode
	cfg.Levels = thresholds.LevelConfig{Names: []string{"L1", "L2", "L3", "L4", "L5", "L6", "L7", "L8"}, MinDaysBeforeEase: 3, Initial: 1}
	return cfg
}

func newDecider(t *testing.T, js jetstream.JetStream, cfg Config, regions *schemas.Regions, clock func() time.Time) (*Decider, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	if regions == nil {
		regions = schemas.DefaultRegions()
	}
	d, err := New(cfg, Deps{Bus: stream.NewBus(js), Regions: regions, Registerer: reg, Clock: clock})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	d.poll = 20 * time.Millisecond
	d.maxWait = 50 * time.Millisecond
	return d, reg
}

// running is a decider whose Run executes in the background.
type running struct {
	d      *Decider
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, d *Decider) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and waits for it: shutdown is cancel + drain, and must
// return nil promptly.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
		return nil
	}
}

// decisions reads every decision on the decisions stream, in order.
func decisions(t *testing.T, js jetstream.JetStream) []schemas.Decision {
	t.Helper()
	var out []schemas.Decision
	for _, m := range streamtest.Messages(t, js, schemas.StreamDecisions) {
		var d schemas.Decision
		if err := json.Unmarshal(m.Data, &d); err != nil {
			t.Fatalf("decision %d: %v", m.Seq, err)
		}
		out = append(out, d)
	}
	return out
}

// waitDecisions waits until the stream holds at least n decisions, then a
// little longer to catch any extra one.
func waitDecisions(t *testing.T, js jetstream.JetStream, n int) []schemas.Decision {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := decisions(t, js)
		if len(ds) >= n {
			time.Sleep(300 * time.Millisecond)
			return decisions(t, js)
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %d decisions, have %d: %s", n, len(ds), summary(ds))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func summary(ds []schemas.Decision) string {
	s := ""
	for _, d := range ds {
		s += fmt.Sprintf("\n  %s %s %d→%d %q", d.DecisionID, d.Action, d.LevelFrom, d.LevelTo, d.Clause)
	}
	return s
}

// audit checks the decisions of each region against the guarantees: one
// message per DecisionID, and a level walk without gaps or repeats (each
// decision starts where the previous one ended, so no step is applied
// twice). It returns every violation.
func audit(ds []schemas.Decision) []string {
	var problems []string
	count := map[string]int{}
	last := map[string]int{}
	for _, d := range ds {
		count[d.DecisionID]++
		if count[d.DecisionID] == 2 {
			problems = append(problems, fmt.Sprintf("decision %s is on the stream more than once", d.DecisionID))
		}
		if prev, ok := last[d.Region]; ok && d.LevelFrom != prev {
			problems = append(problems, fmt.Sprintf("decision %s starts at level %d but the previous one ended at %d", d.DecisionID, d.LevelFrom, prev))
		}
		if step := d.LevelTo - d.LevelFrom; (step > 1 || step < -1) && d.Clause != ClauseManual { // a headquarters may jump
			problems = append(problems, fmt.Sprintf("decision %s moves %d levels", d.DecisionID, step))
		}
		last[d.Region] = d.LevelTo
	}
	return problems
}

// levelChanges counts level steps recorded on the stream for a region.
func levelChanges(ds []schemas.Decision, region string) int {
	n := 0
	for _, d := range ds {
		if d.Region == region && d.LevelFrom != d.LevelTo {
			n++
		}
	}
	return n
}

func readLevel(t *testing.T, js jetstream.JetStream, region string) LevelRecord {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, schemas.BucketLevels)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, region)
	if err != nil {
		t.Fatalf("level of %s: %v", region, err)
	}
	var rec LevelRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}
