package erase_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/erase"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

func TestSelectorValidate(t *testing.T) {
	const p = "0123456789abcdef0123"
	for _, c := range []struct {
		name string
		sel  erase.Selector
		err  string
	}{
		{"a person", erase.Selector{Pseudonyms: []string{p}}, ""},
		{"an event", erase.Selector{Source: "lis", EventID: "c1"}, ""},
		{"nothing", erase.Selector{}, "needs both its source and its event_id"},
		{"an id without source", erase.Selector{EventID: "c1"}, "needs both its source and its event_id"},
		{"both", erase.Selector{Pseudonyms: []string{p}, EventID: "c1"}, "not both"},
		{"a short pseudonym", erase.Selector{Pseudonyms: []string{"abc"}}, "at least 16"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.sel.Validate()
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("Validate() = %v, want %q", err, c.err)
			}
		})
	}
}

// TestFindDeleteRecord: Find selects the person's events under either of
// their pseudonyms (two keys), a chain of corrections of them, and the
// dead letters holding them; nothing else. Delete removes exactly those,
// and a second Delete (a retried erasure) is not an error. The record names
// no pseudonym and no event_id.
func TestFindDeleteRecord(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	const p1, p2, other = "pseudo-key1-0123456789", "pseudo-key2-0123456789", "someone-else-012345678"
	person := func(p string) *schemas.Person { return &schemas.Person{Pseudonym: p, KeyID: "k"} }
	d := schemas.DateOf(time.Now().UTC()).AddDays(-5)
	evs := []schemas.Event{
		{EventID: "c1", Type: schemas.TypeCase, Region: "KZ-75", Source: "lis", Person: person(p1), ReportDate: d},
		{EventID: "c2", Type: schemas.TypeCase, Region: "KZ-75", Source: "lis", Person: person(other), ReportDate: d},
		{EventID: "c3", Type: schemas.TypeCase, Region: "KZ-71", Source: "hosp", Person: person(p2), ReportDate: d},
		{EventID: "k1", Type: schemas.TypeContact, Region: "KZ-75", Source: "tracing", IndexPerson: person(other), ContactPerson: person(p1), ContactDate: d},
		// c1 superseded by c1b (the same person), then retracted by r1; a
		// retraction of the other person's c2 stays; a "c1" of another
		// source is another event.
		{EventID: "c1b", Type: schemas.TypeCase, Region: "KZ-75", Source: "lis", Person: person(p1), ReportDate: d, Supersedes: "c1"},
		{EventID: "r1", Type: schemas.TypeRetraction, Region: "KZ-75", Source: "lis", Retracts: "c1b", ReportDate: d.AddDays(1)},
		{EventID: "r2", Type: schemas.TypeRetraction, Region: "KZ-75", Source: "lis", Retracts: "c2", ReportDate: d.AddDays(1)},
		{EventID: "c1", Type: schemas.TypeCase, Region: "KZ-75", Source: "other-lab", Person: person(other), ReportDate: d},
	}
	pub := s.Bus.Publisher()
	seqOf := map[string]uint64{}
	for i, e := range evs {
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pub.PublishSync(ctx, stream.Msg{Subject: schemas.RefSubject("e"+strings.Repeat("0", 31)+string(rune('a'+i)), e.Type, e.Region), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		seqOf[e.Source+"/"+e.EventID] = r.Seq
	}
	if err := pub.PublishDeadLetters(ctx, []stream.DeadLetter{
		{Stage: schemas.DeadLetterStageIngest, Reason: "unknown region", Data: []byte(`{"event_id":"x","person":{"pseudonym":"` + p2 + `"}}`), Index: 0},
		{Stage: schemas.DeadLetterStageIngest, Reason: "unknown region", Data: []byte(`{"event_id":"y","person":{"pseudonym":"` + other + `"}}`), Index: 1},
	}); err != nil {
		t.Fatal(err)
	}

	er := erase.New(s.Bus, nil)
	sel := erase.Selector{Pseudonyms: []string{p1, p2}}
	plan, err := er.Find(ctx, sel)
	if err != nil {
		t.Fatal(err)
	}
	want := []uint64{seqOf["lis/c1"], seqOf["hosp/c3"], seqOf["tracing/k1"], seqOf["lis/c1b"], seqOf["lis/r1"]}
	if !slices.Equal(plan.Events, want) || plan.Corrections != 1 || len(plan.DeadLetters) != 1 || strings.Join(plan.Regions, " ") != "KZ-71 KZ-75" {
		t.Fatalf("plan: events %v (want %v), corrections %d, dead letters %v, regions %v", plan.Events, want, plan.Corrections, plan.DeadLetters, plan.Regions)
	}
	if err := er.Delete(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if err := er.Delete(ctx, plan); err != nil {
		t.Fatalf("a retried delete: %v", err)
	}
	for _, seq := range want {
		if _, err := s.Bus.GetMsg(ctx, schemas.StreamEvents, seq); err == nil {
			t.Errorf("event %d still stored", seq)
		}
	}
	if again, err := er.Find(ctx, sel); err != nil || len(again.Events)+len(again.DeadLetters) != 0 {
		t.Fatalf("after the delete Find selects %+v, %v", again, err)
	}
	st, err := s.Bus.StreamInfo(ctx, schemas.StreamEvents)
	if err != nil || st.Msgs != uint64(len(evs)-len(want)) {
		t.Fatalf("events stream holds %d messages, want %d (%v)", st.Msgs, len(evs)-len(want), err)
	}

	rec := erase.NewRecord("t-1", sel, plan, "dpo", "ticket 1", time.Now())
	seq, err := er.Record(ctx, rec)
	if err != nil || seq != 1 {
		t.Fatalf("record: seq %d, %v", seq, err)
	}
	if again, err := er.Record(ctx, rec); err != nil || again != seq {
		t.Fatalf("a retried record: seq %d, %v; want the same %d", again, err, seq)
	}
	recs, err := erase.Records(ctx, s.Bus)
	if err != nil || len(recs) != 1 || recs[0].Events != 5 || recs[0].DeadLetters != 1 || recs[0].Kind != schemas.ErasurePerson {
		t.Fatalf("records: %+v, %v", recs, err)
	}
	raw, _ := json.Marshal(recs[0])
	for _, secret := range []string{p1, p2, `"c1"`, "c1b", "r1"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit record holds %s: %s", secret, raw)
		}
	}

	// One producer's event: only its own "c1", not other-lab's.
	plan, err = er.Find(ctx, erase.Selector{Source: "other-lab", EventID: "c1"})
	if err != nil || !slices.Equal(plan.Events, []uint64{seqOf["other-lab/c1"]}) {
		t.Fatalf("event plan: %+v, %v", plan, err)
	}
}
