package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// TestRunExclusive: of two replicas one runs and the other waits; a clean
// stop hands over at once; a holder whose key was taken by another replica
// has its function's context cancelled with ErrLeaseLost.
func TestRunExclusive(t *testing.T) {
	ns := streamtest.New(t)
	ctx := context.Background()
	running := make(chan string, 4)
	leases := make(chan *stream.Lease, 4)
	start := func(name string) (context.CancelFunc, chan error) {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- ns.Bus.RunExclusive(cctx, "test", name, nil, func(fctx context.Context, l *stream.Lease) error {
				if err := l.Check(); err != nil {
					t.Errorf("%s: a fresh lease fails its check: %v", name, err)
				}
				leases <- l
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
	leaseA := <-leases
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
	leaseB := <-leases
	if leaseB.Token() <= leaseA.Token() {
		t.Errorf("fencing tokens do not grow: A %d, then B %d", leaseA.Token(), leaseB.Token())
	}
	// Someone else takes B's key: B loses the lease.
	ns.TakeLease("test", "C")
	select {
	case err := <-doneB:
		if !errors.Is(err, stream.ErrLeaseLost) {
			t.Fatalf("B returned %v, want the lease lost", err)
		}
		if err := leaseB.Check(); !errors.Is(err, stream.ErrLeaseLost) {
			t.Errorf("B's lease after losing it: check %v, want the lease lost", err)
		}
	case <-time.After(2 * stream.DefaultLeaseTTL):
		t.Fatal("B kept running after losing its lease")
	}
	stopB()
}
