package process

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// TestDedupWindow: the same event_id stored twice (published around
// ingest) counts once when the copy comes within the window, and the
// event_ids kept follow the window, not the number of events applied.
// Redeliveries of one stream message are not this (TestRedelivery…).
func TestDedupWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2021, 8, 1, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		window time.Duration
		after  time.Duration // when the copy is stored
		cases  int32         // case events applied on the day (one person: a repeat is a copy counted)
	}{
		{"copy within the window", 24 * time.Hour, time.Hour, 1},
		{"copy at the window's edge", 24 * time.Hour, 24 * time.Hour, 1},
		{"copy after the window counts again", 24 * time.Hour, 72 * time.Hour, 2},
		{"window off", 0, time.Second, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DedupWindow = tc.window
			g := newTestEngineCfg(t, cfg)
			data, err := json.Marshal(caseEv("c1", "KZ-75", 30))
			if err != nil {
				t.Fatal(err)
			}
			if _, applied, err := g.applyMsg(data, 1, t0); err != nil || !applied {
				t.Fatalf("first copy: applied %v, %v", applied, err)
			}
			// The same message delivered again: done, whatever the window.
			if _, applied, err := g.applyMsg(data, 1, t0); err != nil || applied {
				t.Fatalf("redelivery: applied %v, %v", applied, err)
			}
			if _, _, err := g.applyMsg(data, 2, t0.Add(tc.after)); err != nil {
				t.Fatal(err)
			}
			row := g.states["KZ-75"].at(day(30))
			if got := row.casesLocal + row.casesRepeat; got != tc.cases {
				t.Errorf("%d case events applied on the day, want %d", got, tc.cases)
			}
		})
	}

	t.Run("memory follows the window", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.DedupWindow = 24 * time.Hour
		g := newTestEngineCfg(t, cfg)
		const days, perDay = 30, 500
		for i := range days * perDay {
			ts := t0.Add(time.Duration(i) * 24 * time.Hour / perDay)
			data, err := json.Marshal(testEv(fmt.Sprintf("t%d", i), "KZ-75", 30+i/perDay, schemas.ResultNegative))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := g.applyMsg(data, uint64(i+1), ts); err != nil {
				t.Fatal(err)
			}
		}
		r := g.states["KZ-75"]
		// Two windows (pruning waits for a second one) and a little.
		if max := 2*perDay + 1; len(r.recent) > max || len(r.recentQ)-r.recentH > max {
			t.Errorf("after %d events over %d days, %d event_ids kept (%d queued), want at most %d", days*perDay, days, len(r.recent), len(r.recentQ)-r.recentH, max)
		}
		if cap(r.recentQ) > 4*perDay+2048 {
			t.Errorf("the queue's array holds %d entries: its pruned head is not released", cap(r.recentQ))
		}
		var tests int32
		for i := range r.days {
			tests += r.days[i].tests
		}
		if tests != days*perDay {
			t.Errorf("%d tests counted, want %d", tests, days*perDay)
		}
	})
}

// TestOlderLayoutsRebuild: checkpoints of the layouts before ids were scoped
// to their source (testdata/state_v3.bin: EWPS3, by epiwatch 4002185 from
// simulate(5, KZ-75, 30); and an EWPS4 header) key events by event_id
// alone: they are refused as errOldLayout, so the processor rebuilds its
// state from the stream instead of mixing two kinds of keys.
func TestOlderLayoutsRebuild(t *testing.T) {
	t.Parallel()
	v3, err := os.ReadFile("testdata/state_v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"EWPS3", v3},
		{"EWPS4", deflated(t, []byte("EWPS4\x05KZ-75"))},
	} {
		if _, err := decodeRegion(tc.blob); !errors.Is(err, errOldLayout) {
			t.Errorf("%s: decodeRegion = %v, want errOldLayout", tc.name, err)
		}
	}
}

func deflated(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
