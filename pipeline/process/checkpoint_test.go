package process

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// emptyCheckpointStore opens the checkpoint bucket of a fresh server.
func emptyCheckpointStore(t *testing.T) (*stream.KV, *checkpointStore) {
	t.Helper()
	s := streamtest.New(t)
	kv, err := s.Bus.KV(context.Background(), schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	return kv, newCheckpointStore(kv)
}

func TestCheckpointStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv, st := emptyCheckpointStore(t)
	seq, blobs, err := st.load(ctx)
	if err != nil || seq.low != 0 || len(blobs) != 0 {
		t.Fatalf("empty bucket: seq %d, %d blobs, %v", seq, len(blobs), err)
	}

	big := make([]byte, 2*partSize+123) // three parts
	rand.New(rand.NewSource(1)).Read(big)
	small := []byte("small")
	if _, err := st.save(ctx, doneSeqs{low: 10}, 0, time.Now(), map[string][]byte{"KZ-75": big, "KZ-71": small}, nil); err != nil {
		t.Fatal(err)
	}
	// Only KZ-71 changes; KZ-75 keeps its blob.
	if _, err := st.save(ctx, doneSeqs{low: 20}, 0, time.Now(), map[string][]byte{"KZ-71": []byte("smaller")}, nil); err != nil {
		t.Fatal(err)
	}
	if st.man.Regions["KZ-75"].Parts != 3 || st.man.Regions["KZ-75"].Slot != st.writer+"-1" || st.man.Regions["KZ-71"].Slot != st.writer+"-2" {
		t.Fatalf("manifest %+v", st.man)
	}
	// The committed checkpoint purged the part it replaced.
	if _, err := kv.Get(ctx, partKey("KZ-71", st.writer+"-1", 0)); err == nil {
		t.Error("the replaced part of KZ-71 was kept after the commit")
	}

	// A crash after writing a region's parts, before the manifest: the
	// parts are under the next checkpoint's own keys.
	if _, err := kv.Put(ctx, partKey("KZ-71", st.writer+"-3", 0), []byte("half-written")); err != nil {
		t.Fatal(err)
	}
	fresh := newCheckpointStore(kv)
	seq, blobs, err = fresh.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq.low != 20 || !bytes.Equal(blobs["KZ-75"], big) || string(blobs["KZ-71"]) != "smaller" {
		t.Fatalf("loaded seq %d, KZ-71 %q, KZ-75 equal %v", seq, blobs["KZ-71"], bytes.Equal(blobs["KZ-75"], big))
	}

	// A second writer with a stale view of the manifest is refused, and
	// the parts it wrote before the refusal are under its own keys: the
	// committed checkpoint still loads intact.
	if _, err := fresh.save(ctx, doneSeqs{low: 30}, 0, time.Now(), map[string][]byte{"KZ-71": []byte("newest")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.save(ctx, doneSeqs{low: 25}, 0, time.Now(), map[string][]byte{"KZ-71": []byte("loser"), "KZ-75": small}, nil); !errors.Is(err, errCheckpointConflict) {
		t.Fatalf("stale writer: %v, want a conflict", err)
	}
	seq, blobs, err = newCheckpointStore(kv).load(ctx)
	if err != nil || seq.low != 30 || string(blobs["KZ-71"]) != "newest" || !bytes.Equal(blobs["KZ-75"], big) {
		t.Fatalf("after a loser's write: seq %d, KZ-71 %q, %v", seq, blobs["KZ-71"], err)
	}
	// The new writer's first commit purged the earlier writer's parts it
	// no longer references (KZ-71's), and kept the ones it does (KZ-75's).
	if _, err := kv.Get(ctx, partKey("KZ-71", st.writer+"-2", 0)); err == nil {
		t.Error("an earlier writer's unreferenced part was kept")
	}
	if _, err := kv.Get(ctx, partKey("KZ-75", st.writer+"-1", 0)); err != nil {
		t.Errorf("a referenced part of the earlier writer: %v", err)
	}

	// A corrupted part is detected, not loaded.
	ref := fresh.man.Regions["KZ-75"]
	if _, err := kv.Put(ctx, partKey("KZ-75", ref.Slot, 1), []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := newCheckpointStore(kv).load(ctx); err == nil {
		t.Fatal("corrupted checkpoint loaded")
	}
}

// TestCheckpointLostManifestAnswer: a manifest update that committed but
// whose answer was lost (a timeout during a leader election) leaves the
// writer believing the previous manifest is current. Its next save must not
// write over the parts the committed manifest references: it is refused
// (the revision moved) and the committed checkpoint still loads intact.
func TestCheckpointLostManifestAnswer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kv, st := emptyCheckpointStore(t)
	if _, _, err := st.load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.save(ctx, doneSeqs{low: 10}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("first")}, nil); err != nil {
		t.Fatal(err)
	}
	before, beforeRev := st.man, st.rev
	if _, err := st.save(ctx, doneSeqs{low: 20}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("second")}, nil); err != nil {
		t.Fatal(err)
	}
	// The answer to the second manifest update is "lost".
	st.man, st.rev = before, beforeRev
	if _, err := st.save(ctx, doneSeqs{low: 30}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("third, never committed")}, nil); !errors.Is(err, errCheckpointConflict) {
		t.Fatalf("save after a lost answer: %v, want a conflict", err)
	}
	seq, blobs, err := newCheckpointStore(kv).load(ctx)
	if err != nil {
		t.Fatalf("the committed checkpoint no longer loads: %v", err)
	}
	if seq.low != 20 || string(blobs["KZ-75"]) != "second" {
		t.Fatalf("loaded seq %d, KZ-75 %q; want 20, \"second\"", seq, blobs["KZ-75"])
	}
}

// TestCheckpointUnansweredManifestWrite: a manifest write that failed
// without an answer (a timeout, the connection lost) may or may not have
// been applied. The next save finds out instead of taking its own commit
// for another writer's: it commits (no conflict, which would stop the
// processor), and the checkpoint loads with what it wrote.
func TestCheckpointUnansweredManifestWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("applied", func(t *testing.T) {
		t.Parallel()
		kv, st := emptyCheckpointStore(t)
		if _, _, err := st.load(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.save(ctx, doneSeqs{low: 10}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("first"), "KZ-71": []byte("kept")}, nil); err != nil {
			t.Fatal(err)
		}
		before, beforeRev := st.man, st.rev
		if _, err := st.save(ctx, doneSeqs{low: 20}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("second")}, nil); err != nil {
			t.Fatal(err)
		}
		// The second manifest was applied, but its answer never came: the
		// store is left as save leaves it on such an error.
		e, err := kv.Get(ctx, manifestKey)
		if err != nil {
			t.Fatal(err)
		}
		second := st.man.Regions["KZ-75"].Slot
		st.unsure = &manifestWrite{data: e.Value, next: st.man, replaced: before.Regions, codes: []string{"KZ-75"}, slot: second}
		st.man, st.rev = before, beforeRev
		if _, err := st.save(ctx, doneSeqs{low: 30}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("third")}, nil); err != nil {
			t.Fatalf("save after an unanswered, applied manifest write: %v", err)
		}
		seq, blobs, err := newCheckpointStore(kv).load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seq.low != 30 || string(blobs["KZ-75"]) != "third" || string(blobs["KZ-71"]) != "kept" {
			t.Fatalf("loaded seq %d, KZ-75 %q, KZ-71 %q; want 30, \"third\", \"kept\"", seq.low, blobs["KZ-75"], blobs["KZ-71"])
		}
		// The parts the applied manifest replaced, and its own, are purged.
		keys, err := kv.Keys(ctx, "process.state.>")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if k == partKey("KZ-75", before.Regions["KZ-75"].Slot, 0) || k == partKey("KZ-75", second, 0) {
				t.Errorf("part %s of a replaced manifest is still stored (keys %v)", k, keys)
			}
		}
	})

	t.Run("cut short", func(t *testing.T) {
		t.Parallel()
		kv, st := emptyCheckpointStore(t)
		if _, _, err := st.load(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := st.save(ctx, doneSeqs{low: 10}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("first")}, nil); err != nil {
			t.Fatal(err)
		}
		// The write's context ends right before the manifest is sent:
		// applied or not, the client cannot tell.
		wctx, cancel := context.WithCancel(ctx)
		_, err := st.save(wctx, doneSeqs{low: 20}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("second")}, func() error { cancel(); return nil })
		if err == nil || errors.Is(err, errCheckpointConflict) || st.unsure == nil {
			t.Fatalf("manifest write with its context ended: %v (unsure %v), want an unanswered write", err, st.unsure != nil)
		}
		if _, err := st.save(ctx, doneSeqs{low: 30}, 0, time.Now(), map[string][]byte{"KZ-75": []byte("third")}, nil); err != nil {
			t.Fatalf("save after an unanswered manifest write: %v", err)
		}
		if st.unsure != nil {
			t.Fatal("the unanswered write is still unsettled after a save")
		}
		seq, blobs, err := newCheckpointStore(kv).load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if seq.low != 30 || string(blobs["KZ-75"]) != "third" {
			t.Fatalf("loaded seq %d, KZ-75 %q; want 30, \"third\"", seq.low, blobs["KZ-75"])
		}
	})
}
