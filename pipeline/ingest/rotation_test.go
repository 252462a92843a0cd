package ingest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestRetryAcrossKeyRotation: an event accepted under key k1, retried
// unchanged after the documented rotation (k2 active, k1 retired), is a
// duplicate, not a reuse of its event_id; the same event_id with other
// content is still refused — through the real pseudonymiser and JetStream.
func TestRetryAcrossKeyRotation(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	k1 := pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("ab", 32)}
	k2 := pseudo.KeyConfig{ID: "k2", Key: strings.Repeat("cd", 32)}
	ingester := func(active pseudo.KeyConfig, retired ...pseudo.KeyConfig) *ingest.Ingester {
		return realIngester(t, s, ingest.Config{MaxBodyBytes: 1 << 20, MaxBatch: 100}, active, retired...)
	}
	const event = `{"event_id":"rot-1","type":"case","region":"KZ-75","source":"lab-1","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`
	const changed = `{"event_id":"rot-1","type":"case","region":"KZ-75","source":"lab-1","person":{"national_id":"900101300017"},"report_date":"2020-07-02"}`
	status := func(in *ingest.Ingester, raw string) string {
		t.Helper()
		sum, err := in.Submit(ctx, [][]byte{[]byte(raw)})
		if err != nil {
			t.Fatal(err)
		}
		return sum.Results[0].Status
	}
	if got := status(ingester(k1), event); got != ingest.StatusAccepted {
		t.Fatalf("first submission: %s", got)
	}
	rotated := ingester(k2, k1)
	if got := status(rotated, event); got != ingest.StatusDuplicate {
		t.Errorf("unchanged retry after the rotation: %s, want %s", got, ingest.StatusDuplicate)
	}
	if got := status(rotated, changed); got != ingest.StatusRejected {
		t.Errorf("changed event under the used event_id after the rotation: %s, want %s", got, ingest.StatusRejected)
	}
	// Without the retired key in the ring the retry cannot be recognised:
	// refused, never stored twice.
	if got := status(ingester(k2), event); got != ingest.StatusRejected {
		t.Errorf("retry when the old key is gone from the ring: %s, want %s", got, ingest.StatusRejected)
	}
	if n := len(streamtest.Messages(t, s.JS, schemas.StreamEvents)); n != 1 {
		t.Errorf("%d events stored, want 1", n)
	}
}

// realIngester is an ingester with the real contract, validator and
// pseudonymiser (key ring active + retired) on s's events stream.
func realIngester(t *testing.T, s *streamtest.Server, cfg ingest.Config, active pseudo.KeyConfig, retired ...pseudo.KeyConfig) *ingest.Ingester {
	t.Helper()
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	regions := schemas.DefaultRegions()
	ps, err := pseudo.New(active, retired, regions, nil)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(cfg, ingest.Deps{
		Contract: c, Validator: &schemas.Validator{Regions: regions},
		Pseudo: ps, Bus: s.Bus, Refs: s.Refs(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}
