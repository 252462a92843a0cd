package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestEnsureStreamsKeepsOperatorLimits: a component's start creates what is
// missing and fixes what epiwatch needs (subjects, atomic batches), but keeps
// the limits an operator changed, reporting each difference; Bus.Apply
// (`epiwatch migrate --streams`) sets them to the configuration.
func TestEnsureStreamsKeepsOperatorLimits(t *testing.T) {
	ns := streamtest.New(t)
	ctx := context.Background()
	cfg := stream.DefaultConfig()

	s, err := ns.JS.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	// The operator keeps events for two years in 5 GiB and stops intake
	// when full; someone also broke a setting epiwatch depends on.
	op := s.CachedInfo().Config
	op.MaxAge = 730 * 24 * time.Hour
	op.MaxBytes = 5 << 30
	op.Discard = jetstream.DiscardNew
	op.AllowAtomicPublish = false
	if _, err := ns.JS.UpdateStream(ctx, op); err != nil {
		t.Fatal(err)
	}
	// And a stream is missing altogether.
	if err := ns.JS.DeleteStream(ctx, schemas.StreamSignals); err != nil {
		t.Fatal(err)
	}

	drifts, err := ns.Bus.Ensure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]stream.Drift{}
	for _, d := range drifts {
		got[d.Stream+"/"+d.Limit] = d
	}
	if len(drifts) != 3 || got[schemas.StreamEvents+"/max_age"].Server != op.MaxAge.String() || got[schemas.StreamEvents+"/max_bytes"].Want != "21474836480" || got[schemas.StreamEvents+"/discard"].Server == "" {
		t.Errorf("drifts %v, want max_age, max_bytes and discard of %s", drifts, schemas.StreamEvents)
	}
	info := func(name string) (time.Duration, int64, bool) {
		t.Helper()
		s, err := ns.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		c := s.CachedInfo().Config
		return c.MaxAge, c.MaxBytes, c.AllowAtomicPublish
	}
	if age, size, atomic := info(schemas.StreamEvents); age != op.MaxAge || size != op.MaxBytes || !atomic {
		t.Errorf("after a start: max_age %s max_bytes %d atomic %v; want the operator's limits kept and atomic batches back", age, size, atomic)
	}
	if _, err := ns.JS.Stream(ctx, schemas.StreamSignals); err != nil {
		t.Errorf("the missing stream was not created: %v", err)
	}

	changed, err := ns.Bus.Apply(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 3 {
		t.Errorf("applied %v", changed)
	}
	if age, size, _ := info(schemas.StreamEvents); age != cfg.EventsMaxAge || size != cfg.EventsMaxBytes {
		t.Errorf("after migrate --streams: max_age %s max_bytes %d", age, size)
	}
	if drifts, err := ns.Bus.Ensure(ctx, cfg); err != nil || len(drifts) != 0 {
		t.Errorf("after applying: drifts %v, %v", drifts, err)
	}
}

// TestEnsureBucketsKeepsOperatorSettings: a key-value bucket an operator
// changed (longer level history, another lease TTL) keeps its settings on a
// component's start, with a drift reported for each; only migrate --streams
// (Apply) sets them back to the configuration.
func TestEnsureBucketsKeepsOperatorSettings(t *testing.T) {
	ns := streamtest.New(t)
	ctx := context.Background()
	cfg := stream.DefaultConfig()
	levels, err := ns.JS.KeyValue(ctx, schemas.BucketLevels)
	if err != nil {
		t.Fatal(err)
	}
	st, err := levels.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	op := st.Config()
	op.History = 50
	if _, err := ns.JS.UpdateKeyValue(ctx, op); err != nil {
		t.Fatal(err)
	}
	history := func() int64 {
		t.Helper()
		kv, err := ns.JS.KeyValue(ctx, schemas.BucketLevels)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st.History()
	}
	drifts, err := ns.Bus.Ensure(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(drifts) != 1 || drifts[0].Stream != "KV_"+schemas.BucketLevels || drifts[0].Limit != "history" || drifts[0].Server != "50" {
		t.Errorf("drifts %v, want the levels bucket's history", drifts)
	}
	if h := history(); h != 50 {
		t.Errorf("a start set the operator's history 50 back to %d", h)
	}
	if _, err := ns.Bus.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if h := history(); h != 10 {
		t.Errorf("after migrate --streams: history %d, want the configuration's 10", h)
	}
}

// TestReplicasOnASingleServer: stream.replicas: 3 against one NATS server is
// a clear error naming the setting, at once, not a hang.
func TestReplicasOnASingleServer(t *testing.T) {
	ns := streamtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ns.JS.DeleteStream(ctx, schemas.StreamEvents); err != nil {
		t.Fatal(err)
	}
	cfg := stream.DefaultConfig()
	cfg.Replicas = 3
	_, err := ns.Bus.Ensure(ctx, cfg)
	if err == nil || !strings.Contains(err.Error(), "stream.replicas is 3") || !strings.Contains(err.Error(), "not in a JetStream cluster") {
		t.Fatalf("got %v, want an error naming stream.replicas", err)
	}
	if ctx.Err() != nil {
		t.Fatal("it waited for the timeout")
	}
}
