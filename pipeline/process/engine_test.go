package process

import (
	"encoding/json"
	"errors"
	"math/rand"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// rawEvent is an event as the stream holds it.
type rawEvent struct {
	data []byte
	seq  uint64
	ts   time.Time
}

func rawStream(t testing.TB, evs []sent) []rawEvent {
	t.Helper()
	base := time.Date(2022, 6, 1, 6, 0, 0, 0, time.UTC) // after every simulated day
	out := make([]rawEvent, len(evs))
	for i, s := range evs {
		data, err := json.Marshal(s.ev)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = rawEvent{data: data, seq: uint64(i + 1), ts: base.Add(time.Duration(i) * time.Millisecond)}
	}
	return out
}

func newTestEngine(t testing.TB) *engine {
	t.Helper()
	return newTestEngineCfg(t, DefaultConfig())
}

func newTestEngineCfg(t testing.TB, cfg Config) *engine {
	t.Helper()
	r, err := newRModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newEngine(cfg, schemas.DefaultRegions(), r)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// runEngine applies the stream in batches of the given sizes (cycled) and
// returns the latest record bytes per key. restartEvery > 0 round-trips the
// state through the checkpoint codec every that many batches, dropping
// nothing but memory, as a restart from a checkpoint would.
func runEngine(t testing.TB, raw []rawEvent, sizes []int, restartEvery int) map[string][]byte {
	t.Helper()
	g := newTestEngine(t)
	latestBy := map[string]schemas.Indicator{}
	bytesBy := map[string][]byte{}
	var out []schemas.Indicator
	for i, b := 0, 0; i < len(raw); b++ {
		n := sizes[b%len(sizes)]
		for _, m := range raw[i:min(i+n, len(raw))] {
			if _, _, err := g.applyMsg(m.data, m.seq, m.ts); err != nil {
				t.Fatalf("seq %d: %v", m.seq, err)
			}
		}
		i += n
		out = g.pending(out[:0])
		g.markPublished()
		for _, in := range out {
			k := in.Key()
			data, _ := json.Marshal(in)
			// A version can be computed again with other content only
			// because the day became complete (or provisional) since, or
			// its nowcast was made as of another day (or it left the
			// nowcast days).
			if old, ok := latestBy[k]; ok && old.Version == in.Version && string(bytesBy[k]) != string(data) {
				o := old
				o.Provisional = in.Provisional
				o.NowcastAsOf, o.NowcastCompleteness = in.NowcastAsOf, in.NowcastCompleteness
				o.CasesNowcastMedian, o.CasesNowcastQ025, o.CasesNowcastQ975 = in.CasesNowcastMedian, in.CasesNowcastQ025, in.CasesNowcastQ975
				o.RNowcastMean, o.RNowcastQ025, o.RNowcastMedian, o.RNowcastQ975 = in.RNowcastMean, in.RNowcastQ025, in.RNowcastMedian, in.RNowcastQ975
				o.Uncertain = in.Uncertain
				if od, _ := json.Marshal(o); string(od) != string(data) {
					t.Fatalf("%s version %d computed twice with different content:\n%s\n%s", k, in.Version, bytesBy[k], data)
				}
			}
			if old, ok := latestBy[k]; !ok || in.Version >= old.Version {
				latestBy[k], bytesBy[k] = in, data
			}
		}
		if restartEvery > 0 && b%restartEvery == restartEvery-1 {
			g = roundTrip(t, g)
		}
	}
	return bytesBy
}

// roundTrip encodes every region and builds a new engine from the blobs, as
// Processor.restore does.
func roundTrip(t testing.TB, g *engine) *engine {
	t.Helper()
	ng := newTestEngine(t)
	for code, r := range g.states {
		blob, err := encodeRegion(r)
		if err != nil {
			t.Fatal(err)
		}
		nr, err := decodeRegion(blob)
		if err != nil {
			t.Fatalf("decode %s: %v", code, err)
		}
		ng.addRegion(nr)
		ng.last = max(ng.last, nr.last())
	}
	ng.restored()
	return ng
}

// The final records must not depend on how the stream was cut into batches
// nor on restarts from checkpoints.
func TestEngineIsIndependentOfBatchingAndRestarts(t *testing.T) {
	t.Parallel()
	raw := rawStream(t, simulate(11, []string{"KZ-75", "KZ-71", "KG-GB", "KZ-79"}, 50))
	want := runEngine(t, raw, []int{len(raw)}, 0)
	for _, tc := range []struct {
		name    string
		sizes   []int
		restart int
	}{
		{"one at a time", []int{1}, 0},
		{"uneven batches", []int{7, 130, 1, 64, 999}, 0},
		{"restarts every batch", []int{50}, 1},
		{"restarts now and then", []int{13, 200, 77}, 3},
	} {
		got := runEngine(t, raw, tc.sizes, tc.restart)
		if len(got) != len(want) {
			t.Errorf("%s: %d records, want %d", tc.name, len(got), len(want))
		}
		for k, w := range want {
			if string(got[k]) != string(w) {
				t.Errorf("%s: %s differs:\n got %s\nwant %s", tc.name, k, got[k], w)
				break
			}
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	raw := rawStream(t, simulate(5, []string{"KZ-75"}, 30))
	g := newTestEngine(t)
	for _, m := range raw {
		if _, _, err := g.applyMsg(m.data, m.seq, m.ts); err != nil {
			t.Fatal(err)
		}
	}
	r := g.states["KZ-75"]
	r.dirtyFrom, r.changed = 0, false
	blob, err := encodeRegion(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeRegion(blob)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.days, r.days) || back.base != r.base || back.first != r.first ||
		back.reported != r.reported || back.complete != r.complete ||
		!reflect.DeepEqual(back.recent, r.recent) || back.newest != r.newest || !reflect.DeepEqual(back.recentQ, r.recentQ[r.recentH:]) || !reflect.DeepEqual(back.retracted, r.retracted) || !reflect.DeepEqual(back.vax, r.vax) ||
		!reflect.DeepEqual(back.cases, r.cases) || !reflect.DeepEqual(back.contactsOf, r.contactsOf) ||
		!reflect.DeepEqual(back.beds.Facilities(), r.beds.Facilities()) {
		t.Fatal("region state changed through the codec")
	}
	if !reflect.DeepEqual(back.beds.Snapshots(), r.beds.Snapshots()) {
		// Times compare by instant and offset, not by *Location identity.
		a, b := back.beds.Snapshots(), r.beds.Snapshots()
		for i := range a {
			_, oa := a[i].Time.Zone()
			_, ob := b[i].Time.Zone()
			if !a[i].Time.Equal(b[i].Time) || oa != ob || a[i].Seq != b[i].Seq || a[i].EventID != b[i].EventID || a[i].Total != b[i].Total || a[i].Occupied != b[i].Occupied {
				t.Fatalf("bed snapshot %d changed through the codec: %+v vs %+v", i, a[i], b[i])
			}
		}
	}
	t.Logf("%d events, %d days: %d bytes", len(raw), len(r.days), len(blob))

	// Corrupt input is an error, never a panic or a wild allocation.
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 200; i++ {
		bad := append([]byte(nil), blob...)
		bad[rng.Intn(len(bad))] ^= byte(1 + rng.Intn(255))
		_, _ = decodeRegion(bad)
		_, _ = decodeRegion(bad[:rng.Intn(len(bad))])
	}
	if _, err := decodeRegion([]byte("not a state")); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestDecodeEventRejects(t *testing.T) {
	t.Parallel()
	now := time.Date(2021, 7, 20, 12, 0, 0, 0, time.UTC)
	good := caseEv("c1", "KZ-75", 0)
	tests := []struct {
		name string
		mod  func(*schemas.Event)
		ok   bool
	}{
		{"valid", func(*schemas.Event) {}, true},
		{"no id", func(e *schemas.Event) { e.EventID = "" }, false},
		{"bad type", func(e *schemas.Event) { e.Type = "rumour" }, false},
		{"no region", func(e *schemas.Event) { e.Region = "" }, false},
		{"no date", func(e *schemas.Event) { e.ReportDate = 0 }, false},
		{"future beyond a day after storage", func(e *schemas.Event) { e.ReportDate = schemas.DateOf(now).AddDays(2) }, false},
		{"a day after storage", func(e *schemas.Event) { e.ReportDate = schemas.DateOf(now).AddDays(1) }, true},
		{"before 2019", func(e *schemas.Event) { e.ReportDate = schemas.MustDate("2018-12-31") }, false},
		{"onset after report", func(e *schemas.Event) { e.OnsetDate = e.ReportDate + 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			tt.mod(&e)
			data, _ := json.Marshal(e)
			_, err := decodeEvent(new(schemas.EventDecoder), data, now)
			if (err == nil) != tt.ok {
				t.Errorf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
	bed := bedEv("b1", "KZ-75", "F1", schemas.BedInfectious, 0, 9, 10, 11)
	data, _ := json.Marshal(bed)
	if _, err := decodeEvent(new(schemas.EventDecoder), data, now); err == nil {
		t.Error("more occupied than total beds accepted")
	}
	if _, err := decodeEvent(new(schemas.EventDecoder), []byte(`{`), now); err == nil {
		t.Error("broken JSON accepted")
	}
}

// TestOldCheckpointLayout: a checkpoint of an older layout
// (testdata/state_v1.bin, written by the first processor) is recognised as
// such, so the processor rebuilds its state from the stream
// (TestRebuildFromOlderCheckpoint) instead of failing or restoring a state
// that lacks person-episodes, corrections and feeds.
func TestOldCheckpointLayout(t *testing.T) {
	blob, err := os.ReadFile("testdata/state_v1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeRegion(blob); !errors.Is(err, errOldLayout) {
		t.Fatalf("decode a v1 checkpoint: %v, want errOldLayout", err)
	}
}
