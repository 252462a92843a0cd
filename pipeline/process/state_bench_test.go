package process

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// BenchmarkStateGrowth measures what the processor keeps as events
// accumulate: live heap and checkpoint size (every region encoded) after 1M
// and 10M events of a year-long national feed (29 regions; lab tests 60 %,
// confirmed cases 12 %, contacts 18 %, vaccinations 8 %, bed snapshots of
// 100 facilities per region 2 %; one event per 3 s of stream time, so 1M
// events span 35 days and 10M about a year). Persons (cases, contacts,
// vaccinated) are what the state must link and grow with them; the event_ids
// are kept for the dedup window only. The figures to read: heap/event and
// checkpoint/event at 1M against 10M (equal: linear growth; lower at 10M:
// the part that follows the events is bounded), and what the checkpoint
// after 10 more events writes (the changed regions' cores and the changed
// person shards) against the whole state. Indicators are not computed
// (they do not change the state); BenchmarkEngine measures that.
//
//	go test -run XXX -bench StateGrowth -benchtime 1x ./pipeline/process/
func BenchmarkStateGrowth(b *testing.B) {
	for _, n := range []int{1_000_000, 10_000_000} {
		b.Run(fmt.Sprintf("events=%dM", n/1_000_000), func(b *testing.B) {
			if testing.Short() && n > 1_000_000 {
				b.Skip("10M events take a minute")
			}
			for range b.N {
				stateGrowth(b, n)
			}
		})
	}
}

func stateGrowth(b *testing.B, n int) {
	b.Helper()
	codes := schemas.DefaultRegions().Codes()
	g := newTestEngine(b)
	rng := rand.New(rand.NewSource(1))
	t0 := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	const step = 3 * time.Second // per event, all regions together
	persons := 0
	start := time.Now()
	// extra events follow the n: the changes of one checkpoint interval at a
	// national live rate (10 s at 1 event/s), after every region was
	// checkpointed.
	const extra = 10
	var incr int
	for i := range n + extra {
		if i == n {
			for _, r := range g.states {
				r.changed, r.dirtyShards = false, 0
			}
		}
		ts := t0.Add(time.Duration(i) * step)
		region := codes[i%len(codes)]
		d := schemas.DateOf(ts)
		id := fmt.Sprintf("e%d", i)
		var e schemas.Event
		switch x := rng.Intn(100); {
		case x < 60:
			e = schemas.Event{EventID: id, Type: schemas.TypeLabTest, Region: region, Source: "lis",
				Person: person(fmt.Sprintf("p%d", rng.Intn(n/2))), SampleDate: d.AddDays(-1), ResultDate: d,
				TestKind: schemas.TestPCR, Result: []string{schemas.ResultNegative, schemas.ResultPositive}[rng.Intn(8)/7], Lab: "lab1"}
		case x < 72:
			persons++
			e = schemas.Event{EventID: id, Type: schemas.TypeCase, Region: region, Source: "his", Person: person(fmt.Sprintf("c%d", i)),
				Classification: schemas.ClassConfirmed, ReportDate: d, OnsetDate: d.AddDays(-rng.Intn(7))}
		case x < 90:
			persons++
			e = schemas.Event{EventID: id, Type: schemas.TypeContact, Region: region, Source: "tracing",
				IndexPerson: person(fmt.Sprintf("c%d", i-rng.Intn(1000))), ContactPerson: person(fmt.Sprintf("k%d", i)), ContactDate: d, Setting: "household"}
		case x < 98:
			persons++
			e = schemas.Event{EventID: id, Type: schemas.TypeVaccination, Region: region, Source: "vax", Person: person(fmt.Sprintf("v%d", i)),
				VaccinationDate: d, DoseNumber: 1, Vaccine: "x"}
		default:
			occ := rng.Intn(100) // drawn before the facility, as it always was
			e = bedSnapshotEvent(id, region, benchFacilityID(region, rng.Intn(benchFacilities)), schemas.BedInfectious,
				ts.Add(-time.Hour), 100, occ)
		}
		data, err := json.Marshal(&e)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := g.applyMsg(data, uint64(i+1), ts); err != nil {
			b.Fatalf("event %d: %v", i, err)
		}
	}
	applyTook := time.Since(start)
	for _, r := range g.states {
		if !r.changed {
			continue
		}
		blob, err := encodeCore(r)
		if err != nil {
			b.Fatal(err)
		}
		incr += len(blob)
		shards, err := encodeShards(r, r.dirtyShards)
		if err != nil {
			b.Fatal(err)
		}
		for _, blob := range shards {
			incr += len(blob)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	ckpt, recent := 0, 0
	encStart := time.Now()
	for _, r := range g.states {
		blob, err := encodeRegion(r)
		if err != nil {
			b.Fatal(err)
		}
		ckpt += len(blob)
		recent += len(r.recent)
	}
	encTook := time.Since(encStart)
	b.ReportMetric(float64(ms.HeapAlloc)/1e6, "heap-MB")
	b.ReportMetric(float64(encTook.Milliseconds()), "ckpt-encode-ms")
	b.ReportMetric(float64(ms.HeapAlloc)/float64(n), "heap-B/event")
	b.ReportMetric(float64(ckpt)/1e6, "ckpt-MB")
	b.ReportMetric(float64(incr)/1e6, "ckpt-after-10-events-MB")
	b.ReportMetric(float64(ckpt)/float64(n), "ckpt-B/event")
	b.ReportMetric(float64(ckpt)/float64(persons), "ckpt-B/person")
	b.ReportMetric(float64(recent), "event_ids-kept")
	b.ReportMetric(float64(n+extra)/applyTook.Seconds(), "events/s")
	runtime.KeepAlive(g)
}
