package process

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestCheckpointShards: a region's persons are checkpointed in shards, and
// a checkpoint rewrites only the region's core and the shards whose persons
// changed; a restore from the core and the shards gives the same state. A
// state restored from a blob that held its persons itself (the layout before
// shards) moves them all into shards at its next checkpoint.
func TestCheckpointShards(t *testing.T) {
	ctx := context.Background()
	s := streamtest.New(t)
	sim := simulate(9, []string{"KZ-75"}, 30)
	last := publishEvents(t, s.JS, sim)
	kv, err := s.Bus.KV(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	newProc := func() *Processor {
		t.Helper()
		p, err := New(testConfig(), Deps{Bus: s.Bus, Regions: schemas.DefaultRegions()})
		if err != nil {
			t.Fatal(err)
		}
		p.store = newCheckpointStore(kv)
		p.eng.lookup = StreamLookup(s.Bus, s.Refs(), schemas.StreamEvents, time.Second)
		if err := p.restore(ctx); err != nil {
			t.Fatal(err)
		}
		return p
	}
	apply := func(p *Processor, from uint64, n int) {
		t.Helper()
		r, err := s.Bus.Reader(ctx, schemas.StreamEvents, stream.ReadSpec{FromSeq: from})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Stop()
		for got := 0; got < n; {
			msgs, err := r.Fetch(min(500, n-got), 5*time.Second)
			if err != nil || len(msgs) == 0 {
				t.Fatalf("fetch from %d: %d messages, %v", from, len(msgs), err)
			}
			if err := p.handle(ctx, msgs); err != nil {
				t.Fatal(err)
			}
			got += len(msgs)
		}
		if err := p.checkpointLocked(ctx); err != nil {
			t.Fatal(err)
		}
	}
	samePersons := func(what string, a, b *regionState) {
		t.Helper()
		if !reflect.DeepEqual(a.cases, b.cases) || !reflect.DeepEqual(a.contactsOf, b.contactsOf) ||
			!reflect.DeepEqual(a.vax, b.vax) || !reflect.DeepEqual(a.days, b.days) || !reflect.DeepEqual(a.tri, b.tri) {
			t.Fatalf("%s: the restored region differs from the one checkpointed", what)
		}
		if a.cases.len() == 0 || a.contactsOf.len() == 0 || len(a.vax) == 0 {
			t.Fatalf("%s: the simulation gave no persons to compare (%d cases, %d contacts, %d vaccinated)", what, a.cases.len(), a.contactsOf.len(), len(a.vax))
		}
	}

	p := newProc()
	apply(p, 1, int(last))
	before := p.store.man.Regions
	shards := 0
	for key := range before {
		if _, _, ok := parseShardKey(key); ok {
			shards++
		}
	}
	if shards != personShards {
		t.Fatalf("the first checkpoint wrote %d person shards, want %d", shards, personShards)
	}
	samePersons("core and shards", p.eng.states["KZ-75"], newProc().eng.states["KZ-75"])

	// One new contact of a new person: the core and that person's shard.
	contact := contactEv("k-new", "KZ-75", 29, "someone", "a-new-person")
	last = publishEvents(t, s.JS, events(contact))
	apply(p, last, 1)
	var rewritten []string
	for key, ref := range p.store.man.Regions {
		if before[key].Slot != ref.Slot {
			rewritten = append(rewritten, key)
		}
	}
	want := []string{"KZ-75", shardKey("KZ-75", shardOf(keyOf("a-new-person")))}
	if len(rewritten) != 2 || !(rewritten[0] == want[0] && rewritten[1] == want[1] || rewritten[0] == want[1] && rewritten[1] == want[0]) {
		t.Fatalf("one new contact rewrote %v, want %v", rewritten, want)
	}
	samePersons("after one change", p.eng.states["KZ-75"], newProc().eng.states["KZ-75"])

	// The layout before shards: the whole region in one blob.
	whole, err := encodeRegion(p.eng.states["KZ-75"])
	if err != nil {
		t.Fatal(err)
	}
	kv2, err := s.Bus.KV(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	old := newCheckpointStore(kv2)
	if _, _, err := old.load(ctx); err != nil {
		t.Fatal(err)
	}
	old.forgetRegions()
	if _, err := old.save(ctx, p.eng.done, 0, time.Now(), map[string][]byte{"KZ-75": whole}, nil); err != nil {
		t.Fatal(err)
	}
	q := newProc()
	if r := q.eng.states["KZ-75"]; !r.hasPersons {
		t.Fatal("a whole-region blob restored without its persons")
	}
	samePersons("from a whole-region blob", p.eng.states["KZ-75"], q.eng.states["KZ-75"])
	last = publishEvents(t, s.JS, events(caseEv("c-new", "KZ-75", 29)))
	apply(q, last, 1)
	shards = 0
	for key := range q.store.man.Regions {
		if _, _, ok := parseShardKey(key); ok {
			shards++
		}
	}
	if shards != personShards {
		t.Fatalf("after a whole-region blob, the next checkpoint has %d person shards, want %d", shards, personShards)
	}
	samePersons("moved into shards", q.eng.states["KZ-75"], newProc().eng.states["KZ-75"])
}
