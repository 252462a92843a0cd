package process

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// ---- event builders ----

var d0 = schemas.MustDate("2021-07-01")

func day(n int) schemas.Date { return d0.AddDays(n) }

func person(p string) *schemas.Person { return &schemas.Person{Pseudonym: p, KeyID: "k1"} }

func caseEv(id, region string, report int, opts ...func(*schemas.Event)) schemas.Event {
	e := schemas.Event{EventID: id, Type: schemas.TypeCase, Region: region, Source: "test", Person: person("case-" + id), ReportDate: day(report), Classification: schemas.ClassConfirmed}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func imported(e *schemas.Event)        { e.Imported = true }
func probable(e *schemas.Event)        { e.Classification = schemas.ClassProbable }
func onset(n int) func(*schemas.Event) { return func(e *schemas.Event) { e.OnsetDate = day(n) } }
func of(p string) func(*schemas.Event) { return func(e *schemas.Event) { e.Person = person(p) } }
func withResult(kind, result string) func(*schemas.Event) {
	return func(e *schemas.Event) { e.TestKind, e.Result = kind, result }
}

func testEv(id, region string, sample int, result string, opts ...func(*schemas.Event)) schemas.Event {
	e := schemas.Event{EventID: id, Type: schemas.TypeLabTest, Region: region, Source: "lis", Person: person("t-" + id),
		SampleDate: day(sample), ResultDate: day(sample + 1), TestKind: schemas.TestPCR, Result: result, Lab: "lab1"}
	for _, o := range opts {
		o(&e)
	}
	return e
}

func contactEv(id, region string, date int, index, contact string) schemas.Event {
	return schemas.Event{EventID: id, Type: schemas.TypeContact, Region: region, Source: "tracing",
		IndexPerson: person(index), ContactPerson: person(contact), ContactDate: day(date), Setting: "household"}
}

var almaty = time.FixedZone("+05", 5*3600)

func bedEv(id, region, facility, kind string, date int, hour int, total, occupied int) schemas.Event {
	t := day(date).Time()
	t = time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, almaty)
	return schemas.Event{EventID: id, Type: schemas.TypeBedSnapshot, Region: region, Source: "hospital",
		FacilityID: facility, FacilityName: facility, SnapshotTime: &t, BedKind: kind, Total: &total, Occupied: &occupied}
}

func reportComplete(id, region string, feed schemas.EventType, date int) schemas.Event {
	return schemas.Event{EventID: id, Type: schemas.TypeReportComplete, Region: region, Source: "test", Feed: feed, ReportDate: day(date)}
}

func vaxEv(id, region string, date int, who string, dose int) schemas.Event {
	return schemas.Event{EventID: id, Type: schemas.TypeVaccination, Region: region, Source: "vax", Person: person(who),
		DoseNumber: dose, Vaccine: "Sputnik V", VaccinationDate: day(date)}
}

// ---- NATS harness ----

// sent is one event to publish, with the Nats-Msg-Id to use (normally the
// event_id; another one simulates a re-send after the duplicate window).
type sent struct {
	ev    schemas.Event
	msgID string
}

func publishEvents(t testing.TB, js jetstream.JetStream, evs []sent) (lastSeq uint64) {
	t.Helper()
	refs := streamtest.RefsOf(t, js)
	msgs := make([]stream.Msg, len(evs))
	for i, s := range evs {
		data, err := json.Marshal(s.ev)
		if err != nil {
			t.Fatal(err)
		}
		id := s.msgID
		if id == "" {
			id = s.ev.EventID
		}
		ref := refs.Ref(s.ev.Source, id)
		msgs[i] = stream.Msg{Subject: schemas.RefSubject(ref, s.ev.Type, s.ev.Region), ID: ref, Data: data}
	}
	pub := stream.NewBus(js).Publisher()
	for off := 0; off < len(msgs); off += 1000 {
		for i, r := range pub.PublishBatch(context.Background(), msgs[off:min(off+1000, len(msgs))]) {
			if r.Err != nil {
				t.Fatalf("publish event %d: %v", off+i, r.Err)
			}
			lastSeq = max(lastSeq, r.Seq)
		}
	}
	return lastSeq
}

func events(evs ...schemas.Event) []sent {
	out := make([]sent, len(evs))
	for i, e := range evs {
		out[i] = sent{ev: e}
	}
	return out
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.BatchSize = 200
	cfg.MaxWait = 50 * time.Millisecond
	cfg.AckWait = 4 * time.Second
	return cfg
}

// running is a processor started in the background on its own connection.
type running struct {
	p      *Processor
	nc     *nats.Conn
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned; err is then set
	err    error
	reg    *prometheus.Registry
}

func startProcessor(t testing.TB, url string, cfg Config, setup func(*Processor, *running)) *running {
	t.Helper()
	nc, js, err := stream.Connect(url, "process-test")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := New(cfg, Deps{Bus: stream.NewBus(js), Regions: schemas.DefaultRegions(), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{p: p, nc: nc, cancel: cancel, done: make(chan struct{}), reg: reg}
	if setup != nil {
		setup(p, r)
	}
	go func() { r.err = p.Run(ctx); close(r.done) }()
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

// stop cancels the processor (a clean shutdown) and returns Run's error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		return r.err
	case <-time.After(15 * time.Second):
		t.Fatal("processor did not stop within 15s")
		return nil
	}
}

// waitProcessed waits until the durable consumer has acknowledged every
// message up to seq, i.e. their indicators are published.
func waitProcessed(t testing.TB, js jetstream.JetStream, seq uint64) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := js.Consumer(ctx, schemas.StreamEvents, schemas.ConsumerProcess)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0 && info.NumPending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor did not acknowledge up to sequence %d within 20s", seq)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// indicatorRecord is one stored indicator message.
type indicatorRecord struct {
	ind  schemas.Indicator
	data []byte
	seq  uint64
}

// readIndicators returns every record in the indicators stream, in order.
func readIndicators(t testing.TB, js jetstream.JetStream) []indicatorRecord {
	t.Helper()
	var out []indicatorRecord
	for _, m := range streamtest.Messages(t, js, schemas.StreamIndicators) {
		var in schemas.Indicator
		if err := json.Unmarshal(m.Data, &in); err != nil {
			t.Fatalf("indicator record: %v", err)
		}
		out = append(out, indicatorRecord{ind: in, data: m.Data, seq: m.Seq})
	}
	return out
}

// latest returns the highest version of every (region, date), the later of
// equal versions, as indicators_latest shows it.
func latest(t testing.TB, recs []indicatorRecord) map[string]indicatorRecord {
	t.Helper()
	out := make(map[string]indicatorRecord)
	for _, r := range recs {
		k := r.ind.Key()
		if old, ok := out[k]; !ok || r.ind.Version >= old.ind.Version {
			out[k] = r
		}
	}
	return out
}

func get(t testing.TB, m map[string]indicatorRecord, region string, d schemas.Date) schemas.Indicator {
	t.Helper()
	r, ok := m[region+"/"+d.String()]
	if !ok {
		t.Fatalf("no indicator for %s on %s", region, d)
	}
	return r.ind
}

// ---- store copies: identical event streams, timestamps included ----

// cloneServer stops s, copies its store to a new directory and starts a
// second server on it; s is restarted. Both then hold the same streams with
// the same sequences and timestamps.
func cloneServer(t testing.TB, s *streamtest.Server) (url string) {
	t.Helper()
	s.Stop()
	dir := t.TempDir()
	if err := copyDir(s.StoreDir, dir); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	e, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	return e.ClientURL()
}

func copyDir(src, dst string) error {
	return filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}

// ---- simulated outbreak ----

// simulate returns a deterministic outbreak over the regions and days, in
// arrival order: most events arrive on their day, some late (up to 10 days),
// bed corrections and a few re-sent duplicates (new Nats-Msg-Id, same
// event_id).
func simulate(seed int64, regions []string, days int) []sent {
	return simulateWith(seed, regions, days, nil)
}

// simulateWith is simulate with more events: extra, unless nil, is called
// once per region with a function that adds an event arriving on day at
// (counted from d0, as the events' days are). The outbreak's events are
// those of simulate whatever extra adds (the extra events are ordered by
// their own random source), but which events are re-sent can differ.
func simulateWith(seed int64, regions []string, days int, extra func(region string, add func(at int, e schemas.Event))) []sent {
	rng := rand.New(rand.NewSource(seed))
	type arrival struct {
		at  int
		ord float64
		s   sent
	}
	var arr []arrival
	add := func(at int, e schemas.Event) {
		arr = append(arr, arrival{at: at, ord: rng.Float64(), s: sent{ev: e}})
	}
	for ri, region := range regions {
		n := 0
		id := func(kind string) string { n++; return fmt.Sprintf("%s-%s-%d", region, kind, n) }
		var caseDay []int
		var casePerson []string
		for d := 0; d < days; d++ {
			growth := 1.5 + 6*float64(d)/float64(days) - 4*float64(max(0, d-days/2))/float64(days)
			k := int(growth) + rng.Intn(3) + ri
			for i := 0; i < k; i++ {
				caseDay = append(caseDay, d)
				casePerson = append(casePerson, fmt.Sprintf("%s-person-%d", region, len(casePerson)))
			}
		}
		for i, d := range caseDay {
			opts := []func(*schemas.Event){of(casePerson[i])}
			if rng.Intn(10) == 0 {
				opts = append(opts, imported)
			}
			if rng.Intn(20) == 0 {
				opts = append(opts, probable)
			}
			if rng.Intn(3) > 0 {
				opts = append(opts, onset(max(0, d-1-rng.Intn(4))))
			}
			e := caseEv(id("case"), region, d, opts...)
			at := d
			if rng.Intn(20) == 0 {
				at = d + 10 // reported ten days late
			}
			add(at, e)
			// Contacts of this case: some of them are later cases.
			for c := rng.Intn(4); c > 0; c-- {
				contact := fmt.Sprintf("%s-contact-%d", region, rng.Intn(1<<30))
				if j := i + 1 + rng.Intn(10); j < len(caseDay) && rng.Intn(4) == 0 {
					contact = casePerson[j]
				}
				add(d+rng.Intn(2), contactEv(id("contact"), region, d, casePerson[i], contact))
			}
		}
		for d := 0; d < days; d++ {
			for i := 0; i < 3+rng.Intn(4); i++ {
				res := schemas.ResultNegative
				if rng.Intn(4) == 0 {
					res = schemas.ResultPositive
				}
				kind := schemas.TestPCR
				if rng.Intn(8) == 0 {
					kind = schemas.TestAntigen
				}
				add(d+rng.Intn(3), testEv(id("test"), region, d, res, withResult(kind, res)))
			}
			for f := 0; f < 3; f++ {
				fac := fmt.Sprintf("%s-F%d", region, f)
				if f == 2 && d > days*2/3 {
					continue // this facility stops reporting: stale
				}
				occ := 20 + (d*3+f*7)%70
				add(d, bedEv(id("bed"), region, fac, schemas.BedInfectious, d, 9, 100, occ))
				if d%2 == 0 {
					add(d, bedEv(id("bed"), region, fac, schemas.BedICU, d, 9, 10, occ/10))
				}
				if rng.Intn(10) == 0 { // a correction of the same snapshot, a day later
					add(d+1, bedEv(id("bedfix"), region, fac, schemas.BedInfectious, d, 9, 100, occ/2))
				}
			}
			if d > days/3 {
				for i := 0; i < 2+rng.Intn(3); i++ {
					who := fmt.Sprintf("%s-vax-%d", region, rng.Intn(40))
					add(d+rng.Intn(2), vaxEv(id("vax"), region, d, who, 1+rng.Intn(4)))
				}
			}
		}
	}
	if extra != nil {
		xrng := rand.New(rand.NewSource(seed + 1))
		for _, region := range regions {
			extra(region, func(at int, e schemas.Event) {
				arr = append(arr, arrival{at: at, ord: xrng.Float64(), s: sent{ev: e}})
			})
		}
	}
	sort.SliceStable(arr, func(i, j int) bool {
		if arr[i].at != arr[j].at {
			return arr[i].at < arr[j].at
		}
		return arr[i].ord < arr[j].ord
	})
	// Every 97th event is re-sent 300 events later with a new Nats-Msg-Id, as a
	// producer retrying after JetStream's duplicate window would.
	out := make([]sent, 0, len(arr)+len(arr)/50)
	resend := map[int][]sent{}
	for i, a := range arr {
		out = append(out, a.s)
		out = append(out, resend[i]...)
		if i%97 == 13 {
			resend[i+300] = append(resend[i+300], sent{ev: a.s.ev, msgID: a.s.ev.EventID + "-resent"})
		}
	}
	return out
}

func consumerInfo(js jetstream.JetStream) (*jetstream.ConsumerInfo, error) {
	c, err := js.Consumer(context.Background(), schemas.StreamEvents, schemas.ConsumerProcess)
	if err != nil {
		return nil, err
	}
	return c.Info(context.Background())
}

func ackFloor(t testing.TB, js jetstream.JetStream) uint64 {
	info, err := consumerInfo(js)
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

// sum adds up every series of a metric family in the processor's registry.
func sum(t testing.TB, r *running, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// checkpointLocked takes a checkpoint as the processor does, holding its
// lock (a test outside Run holds none).
func (p *Processor) checkpointLocked(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkpoint(ctx)
}

// fetchEvents reads the first n messages of the events stream as the
// consumer would deliver them: real JetStream messages for handing to the
// batch handler by hand.
func fetchEvents(t *testing.T, s *streamtest.Server, n int) []stream.Msg {
	t.Helper()
	r, err := s.Bus.Reader(context.Background(), schemas.StreamEvents, stream.ReadSpec{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	msgs, err := r.Fetch(n, 5*time.Second)
	if err != nil || len(msgs) != n {
		t.Fatalf("fetched %d messages (%v), want %d", len(msgs), err, n)
	}
	return msgs
}
