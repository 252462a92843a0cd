package process

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

func TestCheckpointStore(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	ctx := context.Background()
	kv, err := s.Bus.KV(ctx, schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	st := newCheckpointStore(kv)
	seq, blobs, err := st.load(ctx)
	if err != nil || seq != 0 || len(blobs) != 0 {
		t.Fatalf("empty bucket: seq %d, %d blobs, %v", seq, len(blobs), err)
	}

	big := make([]byte, 2*partSize+123) // three parts
	rand.New(rand.NewSource(1)).Read(big)
	small := []byte("small")
	if _, err := st.save(ctx, 10, time.Now(), map[string][]byte{"KZ-75": big, "KZ-71": small}); err != nil {
		t.Fatal(err)
	}
	// Only KZ-71 changes; KZ-75 keeps its blob.
	if _, err := st.save(ctx, 20, time.Now(), map[string][]byte{"KZ-71": []byte("smaller")}); err != nil {
		t.Fatal(err)
	}
	if st.man.Regions["KZ-75"].Parts != 3 || st.man.Regions["KZ-71"].Slot != st.writer+"-b" {
		t.Fatalf("manifest %+v", st.man)
	}

	// A crash after writing a region's parts, before the manifest: the
	// parts go to the slot the manifest does not point at.
	if _, err := kv.Put(ctx, partKey("KZ-71", st.writer+"-a", 0), []byte("half-written")); err != nil {
		t.Fatal(err)
	}
	fresh := newCheckpointStore(kv)
	seq, blobs, err = fresh.load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if seq != 20 || !bytes.Equal(blobs["KZ-75"], big) || string(blobs["KZ-71"]) != "smaller" {
		t.Fatalf("loaded seq %d, KZ-71 %q, KZ-75 equal %v", seq, blobs["KZ-71"], bytes.Equal(blobs["KZ-75"], big))
	}

	// A second writer with a stale view of the manifest is refused, and
	// the parts it wrote before the refusal are under its own keys: the
	// committed checkpoint still loads intact.
	if _, err := fresh.save(ctx, 30, time.Now(), map[string][]byte{"KZ-71": []byte("newest")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.save(ctx, 25, time.Now(), map[string][]byte{"KZ-71": []byte("loser"), "KZ-75": small}); !errors.Is(err, errCheckpointConflict) {
		t.Fatalf("stale writer: %v, want a conflict", err)
	}
	seq, blobs, err = newCheckpointStore(kv).load(ctx)
	if err != nil || seq != 30 || string(blobs["KZ-71"]) != "newest" || !bytes.Equal(blobs["KZ-75"], big) {
		t.Fatalf("after a loser's write: seq %d, KZ-71 %q, %v", seq, blobs["KZ-71"], err)
	}
	// The new writer's first commit purged the earlier writer's parts it
	// no longer references (KZ-71's), and kept the ones it does (KZ-75's).
	if _, err := kv.Get(ctx, partKey("KZ-71", st.writer+"-b", 0)); err == nil {
		t.Error("an earlier writer's unreferenced part was kept")
	}
	if _, err := kv.Get(ctx, partKey("KZ-75", st.writer+"-a", 0)); err != nil {
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
