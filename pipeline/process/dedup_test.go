package process

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
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

// TestStateV3Layout: a checkpoint written before the dedup window
// (testdata/state_v3.bin: every event_id applied, by epiwatch 4002185 from
// simulate(5, KZ-75, 30)) restores to the state this version builds from
// the same events, its event_ids kept as recent as its newest event, so a
// copy arriving right after the upgrade still counts once.
func TestStateV3Layout(t *testing.T) {
	t.Parallel()
	blob, err := os.ReadFile("testdata/state_v3.bin")
	if err != nil {
		t.Fatal(err)
	}
	old, err := decodeRegion(blob)
	if err != nil {
		t.Fatalf("decode a v3 checkpoint: %v", err)
	}
	raw := rawStream(t, simulate(5, []string{"KZ-75"}, 30))
	g := newTestEngine(t)
	for _, m := range raw {
		if _, _, err := g.applyMsg(m.data, m.seq, m.ts); err != nil {
			t.Fatal(err)
		}
	}
	now := g.states["KZ-75"]
	if !reflect.DeepEqual(old.days, now.days) || old.base != now.base || old.first != now.first ||
		!reflect.DeepEqual(old.cases, now.cases) || !reflect.DeepEqual(old.vax, now.vax) ||
		!reflect.DeepEqual(old.contactsOf, now.contactsOf) || !reflect.DeepEqual(old.retracted, now.retracted) ||
		old.beds.Len() != now.beds.Len() {
		t.Fatal("the v3 checkpoint restores to another state than the same events build")
	}
	if len(old.recent) != len(now.recent) {
		t.Errorf("%d event_ids restored, the same events keep %d", len(old.recent), len(now.recent))
	}
	for id, ts := range old.recent {
		if ts != old.newest {
			t.Fatalf("event_id %x restored at %d, want the newest timestamp %d", id, ts, old.newest)
		}
	}
	// A copy of the first event, stored a minute after the last: skipped.
	g.states["KZ-75"] = old
	last := raw[len(raw)-1]
	if _, applied, err := g.applyMsg(raw[0].data, last.seq+1, last.ts.Add(time.Minute)); err != nil || applied {
		t.Fatalf("a copy after restoring a v3 checkpoint: applied %v, %v", applied, err)
	}
}
