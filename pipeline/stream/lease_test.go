package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestRunExclusive: of two replicas one runs and the other waits; a clean
// stop hands over at once; a holder whose key was taken by another replica
// has its function's context cancelled with ErrLeaseLost.
func TestRunExclusive(t *testing.T) {
	ns := streamtest.New(t)
	ctx := context.Background()
	running := make(chan string, 4)
	start := func(name string) (context.CancelFunc, chan error) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- ns.Bus.RunExclusive(cctx, "test", name, nil, func(fctx context.Context) error {
				running <- name
				<-fctx.Done()
				return nil
			})
		}()
		return cancel, done
	}
	stopA, doneA := start("A")
	if got := <-running; got != "A" {
		t.Fatalf("%s runs first", got)
	}
	stopB, doneB := start("B")
	select {
	case got := <-running:
		t.Fatalf("%s runs while A holds the lease", got)
	case <-time.After(2 * time.Second):
	}
	stopA()
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-running:
		if got != "B" {
			t.Fatalf("%s took over", got)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("B did not take over after A's clean stop")
	}
	// Someone else takes B's key: B loses the lease.
	kv, err := ns.JS.KeyValue(ctx, schemas.BucketLeases)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, "lease.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "lease.test", []byte("C")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-doneB:
		if !errors.Is(err, stream.ErrLeaseLost) {
			t.Fatalf("B returned %v, want the lease lost", err)
		}
	case <-time.After(2 * stream.DefaultLeaseTTL):
		t.Fatal("B kept running after losing its lease")
	}
	stopB()
}
