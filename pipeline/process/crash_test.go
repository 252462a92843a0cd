package process

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// diffLatest compares two sets of latest records byte for byte and returns
// the keys that differ (missing on either side included).
func diffLatest(want, got map[string]indicatorRecord) []string {
	var diff []string
	for k, w := range want {
		if g, ok := got[k]; !ok || string(g.data) != string(w.data) {
			diff = append(diff, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	return diff
}

// TestCrashRecoveryMatchesUninterruptedRun kills the processor over and over
// during a simulated outbreak (a crash between publishing and checkpointing,
// a hard kill at a random moment with the connection cut, a clean stop),
// restarts it from its checkpoint each time, and requires the final
// indicators (the latest version of every region and day, read from the
// indicators stream) to equal those of an uninterrupted run bit for bit. A
// negative control shows the comparison catches one event applied twice.
func TestCrashRecoveryMatchesUninterruptedRun(t *testing.T) {
	t.Parallel()
	s := streamtest.New(t)
	evs := simulate(7, []string{"KZ-75", "KZ-71", "KG-GB"}, 40)
	lastSeq := publishEvents(t, s.JS, evs)
	var doubled string
	for _, e := range evs {
		if e.msgID != "" && e.ev.Type == schemas.TypeCase && e.ev.Confirmed() {
			doubled = e.ev.EventID
			break
		}
	}
	if doubled == "" {
		t.Fatal("the simulation re-sent no event")
	}
	t.Logf("%d events (stream sequence %d)", len(evs), lastSeq)
	// Three servers with byte-identical event streams (sequences and
	// timestamps): the reference, the crashing run, the negative control.
	urlCrash := cloneServer(t, s)
	urlBroken := cloneServer(t, s)

	cfg := testConfig()
	// No event_id window: only the sequences the checkpoints record keep a
	// restart from applying an event twice (the simulation's re-sent copies,
	// stored twice, count twice in every run alike).
	cfg.DedupWindow = 0
	cfg.BatchSize = 64
	cfg.CheckpointBatches = 3
	cfg.CheckpointInterval = time.Hour
	cfg.AckWait = 2 * time.Second

	start := time.Now()
	ref := startProcessor(t, s.URL, cfg, nil)
	waitProcessed(t, s.JS, lastSeq)
	t.Logf("reference run: %s", time.Since(start))
	if err := ref.stop(t); err != nil {
		t.Fatal(err)
	}
	want := latest(t, readIndicators(t, s.JS))
	if len(want) < 100 {
		t.Fatalf("reference run produced only %d records", len(want))
	}

	// The crashing run.
	ncCrash, jsCrash, err := stream.Connect(urlCrash, "observer")
	if err != nil {
		t.Fatal(err)
	}
	defer ncCrash.Close()
	rng := rand.New(rand.NewSource(3))
	crashes := 0
	for round := 0; round < 9; round++ {
		var r *running
		switch round % 3 {
		case 0: // crash after publishing, before the k-th checkpoint
			k := 1 + rng.Intn(3)
			r = startProcessor(t, urlCrash, cfg, func(p *Processor, r *running) {
				n := 0
				p.hooks.beforeCheckpoint = func() error {
					if n++; n < k {
						return nil
					}
					r.nc.Close()
					r.cancel()
					return errCrashed
				}
			})
			select {
			case <-r.done:
				crashes++
			case <-time.After(3 * time.Second):
				r.cancel() // nothing left to crash on
				<-r.done
			}
		case 1: // hard kill: the connection is cut mid-work, no drain
			r = startProcessor(t, urlCrash, cfg, nil)
			time.Sleep(time.Duration(20+rng.Intn(150)) * time.Millisecond)
			r.nc.Close()
			r.cancel()
			<-r.done
			crashes++
		case 2: // clean stop at a random moment
			r = startProcessor(t, urlCrash, cfg, nil)
			time.Sleep(time.Duration(20+rng.Intn(150)) * time.Millisecond)
			if err := r.stop(t); err != nil {
				t.Fatalf("clean stop: %v", err)
			}
		}
		t.Logf("round %d: applied %v, skipped at checkpoint %v, duplicates %v, ack floor %d", round,
			sum(t, r, schemas.MetricProcessEventsApplied), value(t, r.p.m.skipped.WithLabelValues("checkpoint")), value(t, r.p.m.skipped.WithLabelValues("duplicate")), ackFloor(t, jsCrash))
	}
	start = time.Now()
	if info, err := consumerInfo(jsCrash); err == nil {
		t.Logf("before the final run: consumer ack floor %d of %d", info.AckFloor.Stream, lastSeq)
	}
	final := startProcessor(t, urlCrash, cfg, nil)
	waitProcessed(t, jsCrash, lastSeq)
	t.Logf("final run: %s", time.Since(start))
	if err := final.stop(t); err != nil {
		t.Fatal(err)
	}
	got := latest(t, readIndicators(t, jsCrash))
	if diff := diffLatest(want, got); len(diff) > 0 {
		t.Errorf("after %d crashes, %d of %d records differ from the uninterrupted run, e.g. %v", crashes, len(diff), len(want), diff[:min(5, len(diff))])
	}
	t.Logf("%d crashes, %d records identical", crashes, len(want))

	// Negative control: the same comparison must catch one event applied
	// one time too many.
	ncBroken, jsBroken, err := stream.Connect(urlBroken, "observer")
	if err != nil {
		t.Fatal(err)
	}
	defer ncBroken.Close()
	broken := startProcessor(t, urlBroken, cfg, func(p *Processor, _ *running) {
		p.eng.double = func(id string) bool { return id == doubled }
	})
	waitProcessed(t, jsBroken, lastSeq)
	if err := broken.stop(t); err != nil {
		t.Fatal(err)
	}
	bad := latest(t, readIndicators(t, jsBroken))
	if diff := diffLatest(want, bad); len(diff) == 0 {
		t.Errorf("negative control: applying %s twice went unnoticed", doubled)
	} else {
		t.Logf("negative control: double-applying %s changed %d records", doubled, len(diff))
	}
}
