package process

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// victim is the pseudonym of the person erased in these tests.
const victim = "victim-pseudonym-0123456789abcdef"

// withVictim is a simulated outbreak plus the victim's events: three cases
// in two regions, a test, a contact, each arriving among the others.
func withVictim() (all []sent, isVictim func(schemas.Event) bool) {
	all = simulateWith(11, []string{"KZ-75", "KZ-71"}, 40, func(region string, add func(at int, e schemas.Event)) {
		add(10, caseEv("v-case-"+region, region, 10, of(victim), onset(8)))
		add(12, testEv("v-test-"+region, region, 11, "positive", of(victim)))
		if region == "KZ-75" {
			add(20, caseEv("v-case-2", region, 20, of(victim), onset(19)))
			add(21, contactEv("v-contact", region, 21, "someone-else-0123456789abcdef", victim))
		}
	})
	isVictim = func(e schemas.Event) bool {
		for _, p := range []*schemas.Person{e.Person, e.IndexPerson, e.ContactPerson} {
			if p != nil && p.Pseudonym == victim {
				return true
			}
		}
		return false
	}
	return all, isVictim
}

// eraseVictim does what `epiwatch erase` does to the streams (package
// pipeline/erase): secure-delete the victim's events, then append the
// audit record naming their sequences.
func eraseVictim(t *testing.T, bus *stream.Bus, isVictim func(schemas.Event) bool) []uint64 {
	t.Helper()
	ctx := context.Background()
	var seqs []uint64
	if _, err := bus.ReadAll(ctx, schemas.StreamEvents, schemas.SubjectEvents+".>", nil, func(m stream.Msg) {
		var e schemas.Event
		if json.Unmarshal(m.Data, &e) == nil && isVictim(e) {
			seqs = append(seqs, m.Seq)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 6 {
		t.Fatalf("found %d events of the victim, want 6", len(seqs))
	}
	for _, s := range seqs {
		if err := bus.EraseMsg(ctx, schemas.StreamEvents, s); err != nil {
			t.Fatal(err)
		}
	}
	info, err := bus.StreamInfo(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	rec := schemas.Erasure{ID: "test-1", Kind: schemas.ErasurePerson, By: "test", Reason: "test", At: time.Now().UTC(),
		Events: len(seqs), Seqs: seqs, EventsLastSeq: info.LastSeq}
	data, _ := json.Marshal(rec)
	if _, err := bus.Publisher().PublishSync(ctx, stream.Msg{Subject: schemas.ErasureSubject(rec.Kind), ID: "erasure:" + rec.ID, Data: data}); err != nil {
		t.Fatal(err)
	}
	return seqs
}

// comparable is an indicator without what differs between two runs of the
// same events: the version (a stream sequence) and its time.
func comparable(in schemas.Indicator) string {
	in.Version, in.ComputedAt = 0, time.Time{}
	b, _ := json.Marshal(in)
	return string(b)
}

// sameAsReference fails unless the latest records of got equal those of a
// processor that only ever saw want's events.
func sameAsReference(t *testing.T, got map[string]indicatorRecord, want []sent) {
	t.Helper()
	ref := streamtest.New(t)
	last := publishEvents(t, ref.JS, want)
	r := startProcessor(t, ref.URL, testConfig(), nil)
	waitProcessed(t, ref.JS, last)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	exp := latest(t, readIndicators(t, ref.JS))
	if len(exp) != len(got) {
		t.Errorf("%d region-days, want %d", len(got), len(exp))
	}
	bad := 0
	for k, w := range exp {
		g, ok := got[k]
		if !ok || comparable(g.ind) != comparable(w.ind) {
			if bad++; bad <= 5 {
				t.Errorf("%s:\n got %s\nwant %s", k, comparable(g.ind), comparable(w.ind))
			}
		}
	}
}

func without(all []sent, drop func(schemas.Event) bool) []sent {
	var out []sent
	for _, s := range all {
		if !drop(s.ev) {
			out = append(out, s)
		}
	}
	return out
}

// TestErasureWhileStopped: the erasure is recorded while the processor is
// down; at start it finds its checkpoint older than the record, rebuilds
// from the stream, and its records replace those that counted the victim.
func TestErasureWhileStopped(t *testing.T) {
	s := streamtest.New(t)
	all, isVictim := withVictim()
	last := publishEvents(t, s.JS, all)
	r := startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, last)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	before := latest(t, readIndicators(t, s.JS))
	if c := get(t, before, "KZ-75", day(10)).Cases; c == 0 {
		t.Fatal("the victim's case of day 10 was not counted: the test would show nothing")
	}
	eraseVictim(t, s.Bus, isVictim)

	r = startProcessor(t, s.URL, testConfig(), nil)
	waitManifest(t, s.Bus, 1)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := sum(t, r, "epiwatch_process_erasure_rebuilds_total"); n != 0 {
		t.Errorf("rebuilt %v times live; the restore should have rebuilt", n)
	}
	sameAsReference(t, latest(t, readIndicators(t, s.JS)), without(all, isVictim))
}

// TestErasureLive: erased while running (the watcher rebuilds with no batch
// arriving), then more events arrive.
func TestErasureLive(t *testing.T) {
	s := streamtest.New(t)
	all, isVictim := withVictim()
	half := len(all) * 2 / 3
	last := publishEvents(t, s.JS, all[:half])
	r := startProcessor(t, s.URL, testConfig(), nil)
	waitProcessed(t, s.JS, last)
	eraseVictim(t, s.Bus, isVictim)
	waitManifest(t, s.Bus, 1)
	if n := sum(t, r, "epiwatch_process_erasure_rebuilds_total"); n != 1 {
		t.Errorf("rebuilt %v times, want 1", n)
	}
	last = publishEvents(t, s.JS, all[half:])
	waitProcessed(t, s.JS, last)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	sameAsReference(t, latest(t, readIndicators(t, s.JS)), without(all, isVictim))
}

// waitManifest waits until the checkpoint manifest reflects the erasure
// record at seq.
func waitManifest(t *testing.T, bus *stream.Bus, seq uint64) {
	t.Helper()
	ctx := context.Background()
	kv, err := bus.KV(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		e, err := kv.Get(ctx, manifestKey)
		if err == nil && json.Unmarshal(e.Value, &m) == nil && m.Erasures >= seq {
			return
		}
	}
	t.Fatal(fmt.Sprintf("checkpoint manifest at erasure %d after 20 s, want %d", m.Erasures, seq))
}
