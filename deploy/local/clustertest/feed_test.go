package clustertest

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// step is one thing the cluster test sends, kept in order so that the
// single-node reference run is sent exactly the same.
type step struct {
	events []schemas.Event // posted to the ingest API
	resend int             // or: the first resend stored events published again under new message ids
}

// ingestAPI is the real ingest worker and its HTTP API on a bus, with a
// fixed pseudonym key so that two runs store the same bytes.
type ingestAPI struct {
	url string
	bus *stream.Bus
}

func newIngestAPI(t *testing.T, bus *stream.Bus) *ingestAPI {
	t.Helper()
	c, err := schemas.NewContract()
	if err != nil {
		t.Fatal(err)
	}
	// Age bands of events without a date are taken at "now": fixed, so
	// both runs agree.
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	ps, err := pseudo.New(pseudo.KeyConfig{ID: "ct", Key: strings.Repeat("c7", 32)}, nil, schemas.DefaultRegions(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	refs, err := stream.LoadEventRefs(ctx, bus)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ingest.New(ingest.Config{}, ingest.Deps{
		Contract: c, Validator: &schemas.Validator{Regions: schemas.DefaultRegions()},
		Pseudo: ps, Bus: bus, Refs: refs, Registry: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(in.Handler(nil, nil))
	t.Cleanup(srv.Close)
	return &ingestAPI{url: srv.URL + "/v1/events", bus: bus}
}

// post sends events through the API as a producer would (simulate.Sender:
// batches of 1,000, resent after 503/429 with Retry-After or backoff),
// counting them into done as they are answered; every event must end up
// accepted or (a retried batch that had reached the stream) duplicate.
func (a *ingestAPI) post(ctx context.Context, t *testing.T, events []schemas.Event, done *atomic.Int64) simulate.SendResult {
	t.Helper()
	s := &simulate.Sender{URL: a.url, Batch: 1000, MaxWait: 3 * time.Minute}
	var total simulate.SendResult
	for off := 0; off < len(events); off += 5000 {
		chunk := events[off:min(off+5000, len(events))]
		r, err := s.Send(ctx, chunk)
		total.Add(r)
		if err != nil {
			t.Errorf("post events %d…: %v", off, err)
			return total
		}
		if done != nil {
			done.Add(int64(len(chunk)))
		}
	}
	if total.Rejected != 0 || total.Accepted+total.Duplicates != len(events) {
		t.Errorf("ingest answered %+v for %d events", total, len(events))
	}
	return total
}

// resend publishes the first n stored events again under new message ids,
// as a producer's retry after JetStream's duplicate window would: the
// stream stores them again, the sink and the processor must not count them
// twice.
func (a *ingestAPI) resend(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	msgs := readStream(ctx, t, a.bus, schemas.StreamEvents, 1, uint64(n))
	out := make([]stream.Msg, len(msgs))
	for i, m := range msgs {
		// Ingest's own headers go along; JetStream's (message id, atomic
		// batch) are the new publish's business.
		hdr := stream.Header{}
		for k, v := range m.Header {
			if !strings.HasPrefix(k, "Nats-") {
				hdr[k] = v
			}
		}
		out[i] = stream.Msg{Subject: m.Subject, ID: "resent-" + m.ID, Data: m.Data, Header: hdr}
	}
	pub := a.bus.Publisher()
	for off := 0; off < len(out); off += 1000 {
		for i, r := range pub.PublishBatch(ctx, out[off:min(off+1000, len(out))]) {
			if r.Err != nil {
				t.Fatalf("re-send stored event %d: %v", off+i, r.Err)
			}
		}
	}
}

// readStream reads the messages from sequence from to to of a stream. An
// ordered consumer on a cluster can stall after a leader change: it reads
// on with a new one from where it is.
func readStream(ctx context.Context, t *testing.T, bus *stream.Bus, name string, from, to uint64) []stream.Msg {
	t.Helper()
	var out []stream.Msg
	var r *stream.Reader
	defer func() {
		if r != nil {
			r.Stop()
		}
	}()
	empty := 0
	for next := from; next <= to; {
		if r == nil {
			var err error
			if r, err = bus.Reader(ctx, name, stream.ReadSpec{FromSeq: next}); err != nil {
				t.Fatal(err)
			}
		}
		msgs, err := r.Fetch(1000, 5*time.Second)
		if err != nil || len(msgs) == 0 {
			if empty++; empty > 3 {
				t.Fatalf("read %s at %d: %d messages, %v", name, next, len(msgs), err)
			}
			r.Stop()
			r = nil
			continue
		}
		for _, m := range msgs {
			if m.Seq > to {
				return out
			}
			out = append(out, m)
			next = m.Seq + 1
		}
	}
	return out
}

// send runs the steps against an API.
func (a *ingestAPI) send(ctx context.Context, t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		if s.resend > 0 {
			a.resend(ctx, t, s.resend)
		} else {
			a.post(ctx, t, s.events, nil)
		}
	}
}

// processConfig is the processors' configuration on both sides.
func processConfig() process.Config {
	cfg := process.DefaultConfig()
	cfg.AckWait = 5 * time.Second // a killed replica's batch comes back soon
	cfg.CheckpointInterval = time.Second
	return cfg
}

// singleNodeRun sends the same steps to one embedded NATS server through
// the same ingest API and runs one processor over them, uninterrupted: the
// reference the cluster's indicators must equal. It returns the server
// (holding the reference's indicators) and its latest indicators.
func singleNodeRun(t *testing.T, steps []step) (*streamtest.Server, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	ref := streamtest.New(t)
	newIngestAPI(t, ref.Bus).send(ctx, t, steps)
	st, err := ref.JS.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	last := st.CachedInfo().State.LastSeq
	p, err := process.New(processConfig(), process.Deps{Bus: ref.Bus, Regions: schemas.DefaultRegions(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	waitAckFloor(t, ref.JS, schemas.StreamEvents, schemas.ConsumerProcess, last)
	pcancel()
	if err := <-done; err != nil {
		t.Fatalf("reference processor: %v", err)
	}
	want := latestIndicators(t, ref.JS)
	t.Logf("single-node reference: %d stream messages, %d indicator records, %s", last, len(want), time.Since(began).Round(time.Millisecond))
	return ref, want
}
