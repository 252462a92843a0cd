package process

import (
	"context"
	"errors"
	"strings"
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
	st := newCheckpointStore(kv)
	seq, blobs, err := st.load(context.Background())
	regions := 0
	for key, ref := range st.man.Regions {
		if _, _, shard := parseShardKey(key); !shard {
			regions++
		}
		if !strings.HasPrefix(ref.Slot, other.p.store.writer+"-") {
			t.Errorf("region %s of the checkpoint is in slot %s, not the remaining processor's (%s)", key, ref.Slot, other.p.store.writer)
		}
	}
	// The low-watermark may stay at 0: the stopped processor's write is
	// off its lock, so it may have acknowledged its first batch (sequence
	// 1 on) before that write found the conflict, and those events never
	// reach the other. What the other applied is covered above it.
	if err != nil || (seq.low == 0 && len(seq.above) == 0) || regions != 2 || len(blobs) < 2 {
		t.Fatalf("the checkpoint after the conflict: seq %d (+%d above), %d regions, %v", seq.low, len(seq.above), regions, err)
	}
}
