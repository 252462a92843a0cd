package process

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/pipeline/stream/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestRedeliveryBelowCheckpointIsApplied: a message delivered but never
// applied (a fetch that gave up under load drops it unacknowledged) comes
// back after later messages were applied and checkpointed. It must be
// applied, not skipped for being at or below the checkpoint — that would
// lose a case — and a true redelivery of an applied event must still count
// once. Real JetStream messages, handed to the batch handler in the order
// the consumer would deliver them in that case.
func TestRedeliveryBelowCheckpointIsApplied(t *testing.T) {
	ctx := context.Background()
	s := streamtest.New(t)
	publishEvents(t, s.JS, events(
		caseEv("c1", "KZ-75", 3),
		caseEv("c2", "KZ-75", 3),
		caseEv("c3", "KZ-75", 3),
	))
	oc, err := s.JS.OrderedConsumer(ctx, schemas.StreamEvents, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := oc.Fetch(3, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if len(msgs) != 3 {
		t.Fatalf("fetched %d messages, want 3", len(msgs))
	}

	p, err := New(testConfig(), Deps{JS: s.JS, Regions: schemas.DefaultRegions()})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.JS.KeyValue(ctx, schemas.BucketProcessState)
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
	if err := p.checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if p.ckptSeq != 3 {
		t.Fatalf("checkpoint covers %d, want 3", p.ckptSeq)
	}
	// Sequence 1 arrives late, then 2 again (a plain redelivery).
	if err := p.handle(ctx, msgs[:2]); err != nil {
		t.Fatal(err)
	}
	recs := latest(t, readIndicators(t, s.JS))
	if got := get(t, recs, "KZ-75", day(3)).Cases; got != 3 {
		t.Fatalf("KZ-75 on day 3 has %d cases, want 3 (the late-delivered one applied, the redelivered one once)", got)
	}
}
