package process

import (
	"context"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestRedeliveryBelowCheckpointIsApplied: a message delivered but never
// applied (a fetch that gave up under load drops it unacknowledged) comes
// back after later messages were applied and checkpointed. It must be
// applied, not skipped for being at or below the checkpoint — that would
// lose a case — and a true redelivery of an applied event must still count
// once. Real JetStream messages, handed to the batch handler in the order
// the consumer would deliver them in that case. The event_id window is off:
// the sequences the checkpoint records are what tells applied from not.
func TestRedeliveryBelowCheckpointIsApplied(t *testing.T) {
	ctx := context.Background()
	s := streamtest.New(t)
	publishEvents(t, s.JS, events(
		caseEv("c1", "KZ-75", 3),
		caseEv("c2", "KZ-75", 3),
		caseEv("c3", "KZ-75", 3),
	))
	msgs := fetchEvents(t, s, 3)

	cfg := testConfig()
	cfg.DedupWindow = 0
	p, err := New(cfg, Deps{Bus: s.Bus, Regions: schemas.DefaultRegions()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.Bus.KV(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	p.store = &checkpointStore{kv: kv}
	if err := p.restore(ctx); err != nil {
		t.Fatal(err)
	}
	// Sequences 2 and 3 first, then a checkpoint covering 3.
	if err := p.handle(ctx, msgs[1:]); err != nil {
		t.Fatal(err)
	}
	if err := p.checkpointLocked(ctx); err != nil {
		t.Fatal(err)
	}
	// The checkpoint covers the contiguous low-watermark: sequence 1 is
	// still missing, so 0, though 2 and 3 are in the state.
	if p.ckptSeq != 0 {
		t.Fatalf("checkpoint covers %d, want 0 (sequence 1 not applied yet)", p.ckptSeq)
	}
	if above := p.store.man.Above; len(above) != 2 || above[0] != 2 || above[1] != 3 {
		t.Fatalf("checkpoint records %v above its low-watermark, want [2 3]", above)
	}
	// Sequence 1 arrives late, then 2 again (a plain redelivery).
	if err := p.handle(ctx, msgs[:2]); err != nil {
		t.Fatal(err)
	}
	recs := latest(t, readIndicators(t, s.JS))
	if got := get(t, recs, "KZ-75", day(3)).Cases; got != 3 {
		t.Fatalf("KZ-75 on day 3 has %d cases, want 3 (the late-delivered one applied, the redelivered one once)", got)
	}

	// The review's reproduction: the late message was acknowledged, and the
	// processor dies (kill -9) before the next checkpoint. A new processor
	// restores the checkpoint and catches up from its low-watermark: the
	// acknowledged event is not lost, and 2 and 3 are not counted twice.
	p2, err := New(cfg, Deps{Bus: s.Bus, Regions: schemas.DefaultRegions()})
	if err != nil {
		t.Fatal(err)
	}
	p2.store = &checkpointStore{kv: kv}
	p2.eng.lookup = StreamLookup(s.Bus, s.Refs(), schemas.StreamEvents, time.Second)
	if err := p2.restore(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p2.catchUp(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := p2.publish(ctx); err != nil {
		t.Fatal(err)
	}
	if got := p2.eng.states["KZ-75"].at(day(3)).casesLocal; got != 3 {
		t.Fatalf("after a crash and restart, KZ-75 on day 3 has %d cases, want 3", got)
	}
	// Now every sequence is done: the next checkpoint covers 3.
	if err := p2.checkpointLocked(ctx); err != nil || p2.ckptSeq != 3 {
		t.Fatalf("checkpoint after catching up covers %d (%v), want 3", p2.ckptSeq, err)
	}
}

// TestDoneSeqs: the low-watermark moves over contiguous sequences only.
func TestDoneSeqs(t *testing.T) {
	var d doneSeqs
	for _, s := range []uint64{2, 3, 5} {
		d.mark(s)
	}
	if d.low != 0 {
		t.Fatalf("low %d with 1 missing", d.low)
	}
	d.mark(1)
	if d.low != 3 {
		t.Fatalf("low %d after 1, want 3 (4 missing)", d.low)
	}
	d.mark(4)
	d.mark(2) // again: nothing
	if d.low != 5 || len(d.above) != 0 {
		t.Fatalf("low %d, above %v; want 5 and none", d.low, d.above)
	}
	d.mark(9)
	d.mark(7)
	back := doneFrom(d.low, d.sorted())
	for seq := uint64(1); seq <= 10; seq++ {
		want := seq <= 5 || seq == 7 || seq == 9
		if d.has(seq) != want || back.has(seq) != want {
			t.Errorf("sequence %d: has %v, through the checkpoint %v; want %v", seq, d.has(seq), back.has(seq), want)
		}
	}
}
