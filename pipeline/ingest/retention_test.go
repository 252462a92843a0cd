package ingest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestRetentionNeverStopsIngest: at the events stream's size limit the
// oldest events leave the stream and ingest keeps accepting (the default,
// stream.events_discard: old). An event re-sent after it left the stream:
// within JetStream's duplicate window it is answered as a duplicate (nothing
// is left to compare it with, and refusing would have the producer retry for
// ever); after the window it is stored again — ingest can no longer know it —
// and the processor's applied set (TestDuplicatesChangeNothing in
// pipeline/process) and ClickHouse's ReplacingMergeTree on event_id count it
// once. One still in the stream is a duplicate as always.
func TestRetentionNeverStopsIngest(t *testing.T) {
	in, s := newIngesterWith(t, ingest.Config{MaxBodyBytes: 1 << 16, MaxBatch: 100}, nil)
	ctx := context.Background()
	cfg := stream.DefaultConfig()
	cfg.EventsMaxBytes = 64 << 10
	cfg.DuplicateWindow = 2 * time.Second
	if _, err := s.Bus.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	const batches, per = 20, 50 // about 5 times the limit
	for b := range batches {
		raws := make([][]byte, per)
		for i := range raws {
			raws[i] = fmt.Appendf(nil, `{"event_id":"r%d","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`, b*per+i)
		}
		sum, err := in.Submit(ctx, raws)
		if err != nil {
			t.Fatalf("batch %d refused at the retention limit: %v", b, err)
		}
		if sum.Accepted != per {
			t.Fatalf("batch %d: %d of %d accepted: %+v", b, sum.Accepted, per, sum.Results[:3])
		}
	}
	st, err := s.JS.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.FirstSeq <= 1 || info.State.Bytes > uint64(cfg.EventsMaxBytes) || info.State.LastSeq != batches*per {
		t.Fatalf("stream state %+v: want the oldest gone, at most %d bytes, %d stored in all", info.State, cfg.EventsMaxBytes, batches*per)
	}
	t.Logf("%d events accepted; the stream keeps sequences %d–%d (%d bytes)", batches*per, info.State.FirstSeq, info.State.LastSeq, info.State.Bytes)

	old := []byte(`{"event_id":"r0","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`)
	recent := fmt.Appendf(nil, `{"event_id":"r%d","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`, batches*per-1)
	sum, err := in.Submit(ctx, [][]byte{old, recent})
	if err != nil {
		t.Fatalf("re-sent inside the duplicate window: %v", err)
	}
	if sum.Duplicates != 2 {
		t.Errorf("re-sent inside the duplicate window: %+v; want both duplicates", sum)
	}
	time.Sleep(cfg.DuplicateWindow + 500*time.Millisecond)
	sum, err = in.Submit(ctx, [][]byte{old, recent})
	if err != nil {
		t.Fatalf("re-sent after the duplicate window: %v", err)
	}
	if sum.Accepted != 1 || sum.Duplicates != 1 || sum.Results[0].Status != ingest.StatusAccepted {
		t.Errorf("re-sent after the duplicate window: %+v; want the aged-out event stored again and the recent one a duplicate", sum)
	}
}
