package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fastSeeds are inputs near the fast path's edges: plain valid events of
// every type, and small changes of them that it must give up on or the
// schema rejects.
func fastSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, bytes.TrimSpace(b))
		}
	}
	for _, s := range []string{
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:00.125+06:00","bed_kind":"icu","total":10,"occupied":2}`,
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01t08:00:00z","bed_kind":"icu","total":10,"occupied":2}`,
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:60Z","bed_kind":"icu","total":10,"occupied":2}`,
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:00+24:00","bed_kind":"icu","total":1.0,"occupied":2}`,
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:00Z","bed_kind":"icu","total":-0,"occupied":0}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"Алматы ҚР","person":{"national_id":"900101300017","name":"Әлия"},"report_date":"2020-07-01"}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-02-30"}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01","report_date":"2020-07-02"}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01","onset_date":null}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t\u0041","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"9001013000170"},"report_date":"2020-07-01","schema_version":1}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01","schema_version":2}`,
		`{"Event_ID":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`,
		` {"event_id":"v1","type":"vaccination","region":"KG-GB","source":"t","person":{"national_id":"12345678901234"},"dose_number":10,"vaccine":"x","vaccination_date":"2021-03-01"} `,
		`{"event_id":"v1","type":"vaccination","region":"KG-GB","source":"t","person":{"national_id":"12345678901234"},"dose_number":11,"vaccine":"x","vaccination_date":"2021-03-01"}`,
		`{"event_id":"l1","type":"lab_test","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"sample_date":"2020-07-01","result_date":"2020-07-02","test_kind":"pcr","result":"positive","lab":""}`,
		`{"event_id":"k1","type":"contact","region":"KZ-75","source":"t","index_person":{"national_id":"900101300017"},"contact_person":{"national_id":"900101300017","sex":"female"},"contact_date":"2020-07-01","setting":"household"}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}x`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// sameEvent compares two decoded events by their JSON (time.Time locations
// parsed twice are equal but distinct pointers).
func sameEvent(t testing.TB, a, b *Event) {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("fast path decoded\n%s\nthe schema path\n%s", ja, jb)
	}
}

// FuzzFastPathAgrees: whatever the fast path accepts, the JSON Schema path
// accepts too and decodes to the same event.
func FuzzFastPathAgrees(f *testing.F) {
	c, err := NewContract()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fastSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := c.fast.decode(raw)
		if !ok {
			return
		}
		slow, err := c.decodeSchema(raw)
		if err != nil {
			t.Fatalf("fast path accepted what the schema rejects (%v): %s", err, raw)
		}
		sameEvent(t, fast, slow)
	})
}

// TestFastPath: every event the schema accepts takes the fast path — every
// type, non-ASCII text, offsets and fractions of seconds, -0 — except the
// forms it leaves to the schema by design (escapes, repeated keys); everything the schema
// rejects (null, duplicates, wrong case, out-of-range values, trailing
// bytes, bad calendar dates) takes the schema path.
func TestFastPath(t *testing.T) {
	c, err := NewContract()
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range EventTypes {
		if c.fast.events[typ] == nil {
			t.Errorf("%s: no fast-path rules (a schema keyword the fast path does not know?)", typ)
		}
	}
	leftToSchema := []string{`\u0041`, `"report_date":"2020-07-01","report_date"`} // escapes, repeated keys
	taken := 0
	for i, raw := range fastSeeds(t) {
		s := string(raw)
		fast, ok := c.fast.decode(raw)
		slow, err := c.decodeSchema(raw)
		want := err == nil
		for _, k := range leftToSchema {
			want = want && !strings.Contains(s, k)
		}
		if ok != want {
			t.Errorf("seed %d: fast path %v, want %v: %s (schema: %v)", i, ok, want, s, err)
			continue
		}
		if ok {
			taken++
			sameEvent(t, fast, slow)
		}
	}
	if taken < 12 {
		t.Errorf("the fast path took only %d seeds", taken)
	}
}

// BenchmarkDecode compares Decode (the fast path) with the JSON Schema path
// on the valid examples, in the same run.
func BenchmarkDecode(b *testing.B) {
	c, err := NewContract()
	if err != nil {
		b.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/valid/*.json")
	var raws [][]byte
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		raws = append(raws, bytes.TrimSpace(raw))
	}
	for _, path := range []struct {
		name   string
		decode func([]byte) (*Event, error)
	}{{"schema", c.decodeSchema}, {"fast", c.Decode}} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := path.decode(raws[i%len(raws)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// storedSeeds adds the stream's pseudonymised form to fastSeeds.
func storedSeeds(t testing.TB) [][]byte {
	seeds := fastSeeds(t)
	for _, s := range []string{
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"pseudonym":"p-abc","key_id":"k1","age_band":"30-39","sex":"male"},"report_date":"2020-07-01","imported":true}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"pseudonym":"p-abc","pseudonym":"p-def"},"report_date":"2020-07-01"}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"Pseudonym":"p-abc"},"report_date":"2020-07-01","extra":1}`,
		`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"pseudonym":"p-abc"},"report_date":""}`,
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:00+06:00","bed_kind":"icu","total":"10","occupied":2}`,
		`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:00+06:00","bed_kind":"icu","total":99999999999999,"occupied":-2}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzUnmarshalEventAgrees: whatever the fast scanner decodes, json.Unmarshal
// decodes the same.
func FuzzUnmarshalEventAgrees(f *testing.F) {
	for _, s := range storedSeeds(f) {
		f.Add(s)
	}
	// A contact with two persons, decoded before each input by the same
	// EventDecoder: what its buffers keep must not change the next event.
	before := []byte(`{"event_id":"k1","type":"contact","region":"KZ-75","source":"t","index_person":{"pseudonym":"p-a","key_id":"k","sex":"male"},"contact_person":{"pseudonym":"p-b","age_band":"30-39"},"contact_date":"2020-07-01","setting":"household"}`)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d EventDecoder
		if _, err := d.Unmarshal(before); err != nil {
			t.Fatal(err)
		}
		got, err := d.Unmarshal(raw)
		var want Event
		werr := json.Unmarshal(raw, &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("reused decoder's error %v, json.Unmarshal's %v: %s", err, werr, raw)
		}
		if err == nil {
			sameEvent(t, got, &want)
		}
		sc := fastScanner{b: raw}
		sc.ws()
		members, ok := sc.object(0)
		sc.ws()
		if !ok || sc.i != len(raw) {
			return
		}
		fast, ok := plainEvent(members)
		if !ok {
			return
		}
		var slow Event
		if err := json.Unmarshal(raw, &slow); err != nil {
			t.Fatalf("fast scanner decoded what json.Unmarshal rejects (%v): %s", err, raw)
		}
		sameEvent(t, fast, &slow)
	})
}

// TestUnmarshalEvent: UnmarshalEvent gives json.Unmarshal's event or error
// for every seed, and takes the fast scanner for the stream's plain form.
func TestUnmarshalEvent(t *testing.T) {
	taken := 0
	for i, raw := range storedSeeds(t) {
		got, err := UnmarshalEvent(raw)
		var want Event
		werr := json.Unmarshal(raw, &want)
		if (err == nil) != (werr == nil) {
			t.Errorf("seed %d: error %v, json.Unmarshal's %v: %s", i, err, werr, raw)
			continue
		}
		if err != nil {
			continue
		}
		sameEvent(t, got, &want)
		sc := fastScanner{b: raw}
		sc.ws()
		if members, ok := sc.object(0); ok {
			if _, ok := plainEvent(members); ok {
				taken++
			}
		}
	}
	if taken < 15 {
		t.Errorf("the fast scanner took only %d seeds", taken)
	}
}

// TestEventDecoderReuse: one EventDecoder taken through every seed, forwards
// and backwards (contacts with two persons after cases with one, and the
// reverse), decodes each as json.Unmarshal does: nothing of one event's
// members leaks into the next.
func TestEventDecoderReuse(t *testing.T) {
	seeds := storedSeeds(t)
	var d EventDecoder
	for pass := range 2 {
		for i := range seeds {
			if pass == 1 {
				i = len(seeds) - 1 - i
			}
			got, err := d.Unmarshal(seeds[i])
			var want Event
			werr := json.Unmarshal(seeds[i], &want)
			if (err == nil) != (werr == nil) {
				t.Fatalf("seed %d: reused decoder's error %v, json.Unmarshal's %v", i, err, werr)
			}
			if err == nil {
				sameEvent(t, got, &want)
			}
		}
	}
}

// BenchmarkUnmarshalEvent: the stream's events decoded by json.Unmarshal
// (the baseline), by UnmarshalEvent and by one reused EventDecoder, as the
// processor and the sink decode.
func BenchmarkUnmarshalEvent(b *testing.B) {
	var raws [][]byte
	for _, s := range storedSeeds(b) {
		if _, err := UnmarshalEvent(s); err == nil {
			raws = append(raws, s)
		}
	}
	var d EventDecoder
	for _, path := range []struct {
		name   string
		decode func([]byte) (*Event, error)
	}{
		{"json", func(raw []byte) (*Event, error) { var e Event; return &e, json.Unmarshal(raw, &e) }},
		{"func", UnmarshalEvent},
		{"decoder", d.Unmarshal},
	} {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if _, err := path.decode(raws[i%len(raws)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
