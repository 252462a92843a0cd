package stream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestKVCompareAndSet: the callers' fencing rests on these three errors,
// whatever the client calls them.
func TestKVCompareAndSet(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	kv, err := s.Bus.KV(ctx, schemas.BucketLevels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "KZ-75"); !errors.Is(err, stream.ErrKeyNotFound) {
		t.Fatalf("get of an absent key: %v, want ErrKeyNotFound", err)
	}
	if _, err := kv.Get(ctx, "not a key"); !errors.Is(err, stream.ErrKeyNotFound) {
		t.Fatalf("get of an invalid key: %v, want ErrKeyNotFound", err)
	}
	rev, err := kv.Create(ctx, "KZ-75", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "KZ-75", []byte("2")); !errors.Is(err, stream.ErrKeyExists) {
		t.Fatalf("second create: %v, want ErrKeyExists", err)
	}
	next, err := kv.Update(ctx, "KZ-75", []byte("2"), rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "KZ-75", []byte("3"), rev); !errors.Is(err, stream.ErrWrongRevision) {
		t.Fatalf("update at a stale revision: %v, want ErrWrongRevision", err)
	}
	e, err := kv.Get(ctx, "KZ-75")
	if err != nil || string(e.Value) != "2" || e.Revision != next {
		t.Fatalf("get: %v %q rev %d, want \"2\" rev %d", err, e.Value, e.Revision, next)
	}
	if keys, err := kv.Keys(ctx); err != nil || len(keys) != 1 || keys[0] != "KZ-75" {
		t.Fatalf("keys: %v %v", keys, err)
	}
	if all, err := kv.All(ctx, "*"); err != nil || len(all) != 1 || string(all["KZ-75"].Value) != "2" {
		t.Fatalf("all: %v %v", all, err)
	}
}
