package process

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestSecondProcessorStops: two processors started on the same stream (a
// deployment error, or a rollout during a partition) — the first checkpoint
// conflict stops one of them with the conflict as Run's error, instead of a
// warning while both keep publishing; the other goes on, and its checkpoint
// still loads.
func TestSecondProcessorStops(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	evs := simulate(3, []string{"KZ-75", "KZ-71"}, 40)
	half := len(evs) / 2
	publishEvents(t, s.JS, evs[:half])
	cfg := testConfig()
	cfg.BatchSize = 50
	cfg.CheckpointBatches = 1 // a checkpoint after every batch: the conflict comes at once
	a := startProcessor(t, s.URL, cfg, nil)
	b := startProcessor(t, s.URL, cfg, nil)
	publishEvents(t, s.JS, evs[half:])

	var stopped, other *running
	select {
	case <-a.done:
		stopped, other = a, b
	case <-b.done:
		stopped, other = b, a
	case <-time.After(30 * time.Second):
		t.Fatal("both processors kept running on one stream")
	}
	if !errors.Is(stopped.err, errCheckpointConflict) {
		t.Fatalf("the stopped processor returned %v, want the checkpoint conflict", stopped.err)
	}
	select {
	case <-other.done:
		t.Fatalf("both stopped; the other with %v", other.err)
	case <-time.After(time.Second):
	}
	if err := other.stop(t); err != nil {
		t.Fatalf("the remaining processor's shutdown: %v", err)
	}
	kv, err := s.Bus.KV(context.Background(), schemas.BucketProcessState)
	if err != nil {
		t.Fatal(err)
	}
	seq, blobs, err := newCheckpointStore(kv).load(context.Background())
	regions := 0
	for key := range blobs {
		if _, _, shard := parseShardKey(key); !shard {
			regions++
		}
	}
	if err != nil || seq.low == 0 || regions != 2 {
		t.Fatalf("the checkpoint after the conflict: seq %d, %d regions, %v", seq.low, regions, err)
	}
}
