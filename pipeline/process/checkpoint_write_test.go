package process

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestCheckpointWriteOffLock drives the checkpoint writer by hand: batches
// go on while a write is held up, the write has a deadline of its own (not
// a batch's AckWait, which the cluster test saw expire under load), a
// failed write marks its regions changed again so the next checkpoint
// writes them, and a write aborted for a stop ends at once.
func TestCheckpointWriteOffLock(t *testing.T) {
	ctx := context.Background()
	s := streamtest.New(t)
	publishEvents(t, s.JS, events(
		caseEv("c1", "KZ-75", 3),
		caseEv("c2", "KZ-71", 3),
		caseEv("c3", "KZ-75", 4),
		caseEv("c4", "KZ-19", 4),
	))
	msgs := fetchEvents(t, s, 4)

	cfg := testConfig()
	cfg.CheckpointBatches = 1 // every batch starts one, unless one is in flight
	newProc := func() *Processor {
		t.Helper()
		p, err := New(cfg, Deps{Bus: s.Bus, Regions: schemas.DefaultRegions()})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := s.Bus.KV(ctx, schemas.BucketProcessState)
		if err != nil {
			t.Fatal(err)
		}
		p.store = newCheckpointStore(kv)
		if err := p.restore(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := newProc()
	// Every write waits for its verdict on gate; entered reports its
	// context's deadline.
	gate := make(chan error)
	entered := make(chan time.Duration, 1)
	p.hooks.checkpointWrite = func(wctx context.Context) error {
		dl, ok := wctx.Deadline()
		if !ok {
			dl = time.Now()
		}
		entered <- time.Until(dl)
		select {
		case err := <-gate:
			return err
		case <-wctx.Done():
			return wctx.Err()
		}
	}
	inFlight := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.writing != nil
	}
	wait := func() {
		p.mu.Lock()
		p.waitCheckpoint()
		p.mu.Unlock()
	}

	// 1. A held-up write does not hold up batches.
	if err := p.handle(ctx, msgs[:1]); err != nil {
		t.Fatal(err)
	}
	if left := <-entered; left < checkpointWriteTimeout-time.Minute || left <= cfg.AckWait {
		t.Fatalf("the write has %s left, want its own deadline (%s), not AckWait (%s)", left, checkpointWriteTimeout, cfg.AckWait)
	}
	began := time.Now()
	if err := p.handle(ctx, msgs[1:2]); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > time.Second || !inFlight() {
		t.Fatalf("a batch during a write took %s (write in flight %v), want it handled at once beside the write", took, inFlight())
	}
	gate <- nil
	wait()
	if p.ckptSeq != 1 {
		t.Fatalf("the checkpoint covers %d, want 1 (what was done when it started)", p.ckptSeq)
	}
	if !p.eng.states["KZ-71"].changed || p.eng.states["KZ-75"].changed {
		t.Fatal("after the write, KZ-71 (changed meanwhile) must be left for the next checkpoint, KZ-75 not")
	}

	// 2. A failed write marks its regions changed again.
	if err := p.handle(ctx, msgs[2:3]); err != nil {
		t.Fatal(err)
	}
	<-entered
	gate <- errors.New("injected: the NATS cluster is electing a leader")
	wait()
	if p.ckptSeq != 1 || !p.eng.states["KZ-71"].changed || !p.eng.states["KZ-75"].changed {
		t.Fatalf("after a failed write: checkpoint at %d, KZ-71 changed %v, KZ-75 changed %v; want 1, both changed",
			p.ckptSeq, p.eng.states["KZ-71"].changed, p.eng.states["KZ-75"].changed)
	}

	// 3. A write aborted for a stop ends now, not at its deadline, and
	// gives its regions back too.
	if err := p.handle(ctx, msgs[3:]); err != nil {
		t.Fatal(err)
	}
	<-entered
	began = time.Now()
	p.mu.Lock()
	p.stopCheckpoint(true)
	p.mu.Unlock()
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("an aborted write took %s to end", took)
	}
	for _, code := range []string{"KZ-71", "KZ-75", "KZ-19"} {
		if !p.eng.states[code].changed {
			t.Fatalf("%s not marked changed after an aborted write", code)
		}
	}

	// 4. The next checkpoint writes every region the failed ones held; a
	// restart restores exactly this state.
	go func() { <-entered; gate <- nil }()
	if err := p.checkpointLocked(ctx); err != nil || p.ckptSeq != 4 {
		t.Fatalf("checkpoint after the failures: covers %d (%v), want 4", p.ckptSeq, err)
	}
	q := newProc()
	if q.ckptSeq != 4 || len(q.eng.states) != len(p.eng.states) {
		t.Fatalf("restored at %d with %d regions, want 4 and %d", q.ckptSeq, len(q.eng.states), len(p.eng.states))
	}
	for code, r := range p.eng.states {
		want, err := encodeCore(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeCore(q.eng.states[code])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s restored differs from the state checkpointed", code)
		}
	}
}
