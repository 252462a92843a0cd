package process

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/epiwatch/epiwatch/schemas"
)

// TestNowcastRestartEqual: the reporting triangle the nowcast reads is not
// checkpointed but rebuilt from the region's cases; a restored state
// publishes the same nowcast as the one that never stopped.
func TestNowcastRestartEqual(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Nowcast.Enabled = true
	cfg.RDate = RByOnset
	g := newTestEngineCfg(t, cfg)
	var evs []schemas.Event
	id := 0
	for d := 0; d < 50; d++ {
		for k := 0; k < 6+d/5; k++ {
			id++
			report := d + (k*7+id)%9
			evs = append(evs, caseEv(idOf(id), "KZ-75", report, onset(d), of(idOf(id))))
		}
	}
	for i := range evs {
		if _, err := g.applyEvent(&evs[i], uint64(i+1), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := g.pending(nil)
	nowcast := 0
	for _, in := range want {
		if !in.NowcastAsOf.IsZero() {
			nowcast++
		}
	}
	if nowcast == 0 {
		t.Fatal("nothing was nowcast: the test compares nothing")
	}
	blob, err := encodeRegion(g.states["KZ-75"])
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeRegion(blob)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestEngineCfg(t, cfg)
	h.addRegion(r)
	h.last = g.last
	h.restored()
	h.published = 0
	r.dirtyFrom = r.base
	got := h.pending(nil)
	if len(got) != len(want) {
		t.Fatalf("restored: %d records, before: %d", len(got), len(want))
	}
	for i := range want {
		a, _ := json.Marshal(want[i])
		b, _ := json.Marshal(got[i])
		if string(a) != string(b) {
			t.Fatalf("record %d differs after the restore:\n got %s\nwant %s", i, b, a)
		}
	}
}

func idOf(n int) string { return fmt.Sprintf("nc-%d", n) }
