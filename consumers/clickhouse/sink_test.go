package clickhouse_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

func migrated(t *testing.T) (driver.Conn, string) {
	t.Helper()
	db := chtest.New(t)
	if _, err := chsink.Migrate(context.Background(), db.Conn, db.Name, "", schemas.DefaultRegions()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db.Conn, db.Name
}

func caseEvent(i int) schemas.Event {
	return schemas.Event{
		EventID: fmt.Sprintf("case-%06d", i), Type: schemas.TypeCase, Region: []string{"KZ-75", "KZ-71", "KG-GB"}[i%3], Source: "test",
		Person:     &schemas.Person{Pseudonym: fmt.Sprintf("p%06d", i), KeyID: "k1", AgeBand: "30-39", Sex: "female"},
		ReportDate: schemas.MustDate("2020-06-20").AddDays(i % 40), // spans two monthly partitions
		Imported:   i%10 == 0,
	}
}

// publish puts events on the stream; dup re-publishes some under another
// Nats-Msg-Id, as a producer retry after the duplicate window would.
func publish(t *testing.T, s *streamtest.Server, from, to int, dup bool) {
	t.Helper()
	pub := s.Bus.Publisher()
	refs := s.Refs()
	var msgs []stream.Msg
	for i := from; i < to; i++ {
		e := caseEvent(i)
		b, _ := json.Marshal(e)
		id := refs.Ref(e.Source, e.EventID)
		if dup {
			id += ":again"
		}
		msgs = append(msgs, stream.Msg{Subject: refs.Subject(e.Source, e.EventID, e.Type, e.Region), ID: id, Data: b})
	}
	for start := 0; start < len(msgs); start += 1000 {
		end := min(start+1000, len(msgs))
		for _, r := range pub.PublishBatch(context.Background(), msgs[start:end]) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

type runningSink struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startSink(t *testing.T, s *streamtest.Server, conn driver.Conn, db string, batch int) *runningSink {
	t.Helper()
	sk, err := chsink.New(chsink.SinkConfig{BatchSize: batch, FlushInterval: 100 * time.Millisecond, RetryMax: time.Second},
		chsink.Deps{Conn: conn, Database: db, Bus: s.Open("sink")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningSink{cancel: cancel}
	r.wg.Add(1)
	go func() { defer r.wg.Done(); _ = sk.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

func (r *runningSink) stop() { r.cancel(); r.wg.Wait() }

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A redelivered or re-sent event never shows twice in what analysts read, and
// the sink restarted in the middle loses nothing.
func TestSinkExactlyOnceView(t *testing.T) {
	s := streamtest.New(t)
	conn, db := migrated(t)
	const n = 20000
	publish(t, s, 0, n/2, false)
	r := startSink(t, s, conn, db, 700)
	publish(t, s, n/2, n, false)
	// Stop the sink while it is still working through the backlog.
	waitFor(t, "first rows", 30*time.Second, func() bool {
		return count(t, conn, fmt.Sprintf("SELECT count() FROM %s.events_v2_store", db)) > 0
	})
	r.stop()
	publish(t, s, 0, 3000, true) // re-sent events, different Nats-Msg-Id
	startSink(t, s, conn, db, 700)
	q := fmt.Sprintf("SELECT count() FROM %s.events", db)
	waitFor(t, "all events", 60*time.Second, func() bool { return count(t, conn, q) >= n })
	time.Sleep(300 * time.Millisecond) // let any straggling duplicate land
	if got := count(t, conn, q); got != n {
		t.Fatalf("events view holds %d rows, want %d", got, n)
	}
	if got := count(t, conn, fmt.Sprintf("SELECT uniqExact(event_id) FROM %s.events", db)); got != n {
		t.Fatalf("%d distinct event_ids, want %d", got, n)
	}
	// Negative control: the raw table does hold the re-sent rows, so the
	// exact count above is the view's de-duplication, not luck.
	if raw := count(t, conn, fmt.Sprintf("SELECT count() FROM %s.events_v2_store", db)); raw <= n {
		t.Logf("raw table holds %d rows (merges may already have collapsed duplicates)", raw)
	}
	var imported uint64
	if err := conn.QueryRow(context.Background(), fmt.Sprintf("SELECT toUInt64(sum(imported)) FROM %s.cases", db)).Scan(&imported); err != nil {
		t.Fatal(err)
	}
	if imported != n/10 {
		t.Fatalf("imported cases %d, want %d", imported, n/10)
	}
}

// Undecodable messages are dead-lettered by the sink; their neighbours land.
func TestSinkDeadLettersGarbage(t *testing.T) {
	s := streamtest.New(t)
	conn, db := migrated(t)
	publish(t, s, 0, 10, false)
	pub := s.Bus.Publisher()
	if r := pub.Publish(context.Background(), stream.Msg{Subject: s.Refs().Subject("t", "garbage", schemas.TypeCase, "KZ-75"), ID: s.Refs().Ref("t", "garbage"), Data: []byte("{not json")}); r.Err != nil {
		t.Fatal(r.Err)
	}
	publish(t, s, 10, 20, false)
	startSink(t, s, conn, db, 100)
	waitFor(t, "20 events", 30*time.Second, func() bool { return count(t, conn, fmt.Sprintf("SELECT count() FROM %s.events", db)) == 20 })
	waitFor(t, "dead letter", 10*time.Second, func() bool {
		st, _ := s.JS.Stream(context.Background(), schemas.StreamDeadLetter)
		info, err := st.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	})
	st, _ := s.JS.Stream(context.Background(), schemas.StreamDeadLetter)
	m, err := st.GetLastMsgForSubject(context.Background(), schemas.DeadLetterSubject(schemas.DeadLetterStageSink, "case"))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Data) != "{not json" || m.Header.Get(schemas.HeaderReason) == "" {
		t.Fatalf("dead letter %q reason %q", m.Data, m.Header.Get(schemas.HeaderReason))
	}
}
