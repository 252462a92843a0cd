package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestDeadLetterKeepsPseudonym: an event rejected for something else than
// its person keeps the person pseudonymised in its dead letter (pseudonym
// and key_id, never the national ID), so the fixed event is accepted again
// without anyone re-sending the ID, and counts for the same person. An ID
// that does not validate is redacted, never stored in any form.
func TestDeadLetterKeepsPseudonym(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	k1 := pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("ab", 32)}
	in := realIngester(t, s, ingest.Config{MaxBodyBytes: 1 << 20, MaxBatch: 100}, k1)
	ps, err := pseudo.New(k1, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const iin, badIIN = "900101300017", "900101300018"
	want, err := ps.Pseudonym("k1", "KZ", iin)
	if err != nil {
		t.Fatal(err)
	}
	const (
		unknownRegion = `{"event_id":"dl-1","type":"case","region":"KZ-99","source":"lab-1","person":{"national_id":"` + iin + `"},"report_date":"2020-07-01"}`
		invalidID     = `{"event_id":"dl-2","type":"case","region":"KZ-75","source":"lab-1","person":{"national_id":"` + badIIN + `"},"report_date":"2020-07-01"}`
	)
	sum, err := in.Submit(ctx, [][]byte{[]byte(unknownRegion), []byte(invalidID)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Rejected != 2 {
		t.Fatalf("answer %+v, want both rejected", sum)
	}
	dls, err := s.Bus.ListDeadLetters(ctx, 0, 0, schemas.DeadLetterStageIngest)
	if err != nil {
		t.Fatal(err)
	}
	// Dead letters name events by ref (a keyed digest), never by event_id.
	refs := s.Refs()
	byID := map[string][]byte{}
	for _, d := range dls {
		for _, id := range []string{"dl-1", "dl-2"} {
			if d.Ref == refs.Ref("lab-1", id) {
				byID[id] = d.Data
			}
		}
	}
	if len(byID) != 2 {
		t.Fatalf("dead letters %v, want dl-1 and dl-2", dls)
	}
	for id, data := range byID {
		if bytes.Contains(data, []byte(iin)) || bytes.Contains(data, []byte(badIIN)) {
			t.Errorf("%s: the national ID is in the dead letter: %s", id, data)
		}
	}
	var kept schemas.Event
	if err := json.Unmarshal(byID["dl-1"], &kept); err != nil {
		t.Fatalf("dl-1's dead letter is not an event: %v: %s", err, byID["dl-1"])
	}
	if kept.Person == nil || kept.Person.Pseudonym != want || kept.Person.KeyID != "k1" {
		t.Fatalf("dl-1's dead letter person %+v, want pseudonym %s under k1: %s", kept.Person, want, byID["dl-1"])
	}
	if !bytes.Contains(byID["dl-2"], []byte(`"national_id":"[redacted]"`)) || bytes.Contains(byID["dl-2"], []byte(`"pseudonym"`)) {
		t.Errorf("dl-2 (invalid ID) should be redacted, not pseudonymised: %s", byID["dl-2"])
	}

	// Fixed (the region), the dead letter is accepted as it stands when
	// replayed; a producer could not send that form.
	fixed := bytes.Replace(byID["dl-1"], []byte(`"KZ-99"`), []byte(`"KZ-75"`), 1)
	if sum, err = in.Submit(ctx, [][]byte{fixed}); err != nil || sum.Rejected != 1 {
		t.Fatalf("the pseudonymised form through the producers' Submit: %+v, %v; want rejected", sum, err)
	}
	sum, err = in.SubmitDeadLetters(ctx, [][]byte{fixed})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Accepted != 1 {
		t.Fatalf("the fixed dead letter: %+v", sum.Results)
	}
	// A replayed dead letter is checked as strictly as a producer's event.
	for _, bad := range []string{
		strings.Replace(string(fixed), `"key_id":"k1"`, `"key_id":"k9"`, 1),
		strings.Replace(string(fixed), `"source":"lab-1"`, `"source":"lab-1","extra":1`, 1),
		strings.Replace(string(fixed), `"source":"lab-1"`, `"source":"lab 900101300017"`, 1),
	} {
		if sum, err := in.SubmitDeadLetters(ctx, [][]byte{[]byte(bad)}); err != nil || sum.Rejected != 1 {
			t.Errorf("replay of %s: %+v, %v; want rejected", bad, sum, err)
		}
	}
	// It is stored as the original with the right region would have been.
	direct := strings.Replace(strings.Replace(unknownRegion, "KZ-99", "KZ-75", 1), "dl-1", "dl-3", 1)
	if sum, err = in.Submit(ctx, [][]byte{[]byte(direct)}); err != nil || sum.Accepted != 1 {
		t.Fatalf("direct submission: %+v, %v", sum, err)
	}
	stored := map[string]schemas.Event{}
	for _, m := range streamtest.Messages(t, s.JS, schemas.StreamEvents) {
		var e schemas.Event
		if err := json.Unmarshal(m.Data, &e); err != nil {
			t.Fatal(err)
		}
		stored[e.EventID] = e
	}
	a, b := stored["dl-1"], stored["dl-3"]
	if a.Person == nil || b.Person == nil || *a.Person != *b.Person {
		t.Errorf("replayed person %+v, directly submitted %+v: want the same", a.Person, b.Person)
	}
}
