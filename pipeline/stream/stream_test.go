package stream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

func TestPublishDeduplicatesByID(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	pub := s.Bus.Publisher()
	subj := schemas.RefSubject("e0123456789abcdef0123456789abcdef", schemas.TypeCase, "KZ-75")
	msgs := []stream.Msg{{Subject: subj, ID: "e1", Data: []byte(`1`)}, {Subject: subj, ID: "e2", Data: []byte(`2`)}, {Subject: subj, ID: "e1", Data: []byte(`1`)}}
	res := pub.PublishBatch(ctx, msgs)
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("msg %d: %v", i, r.Err)
		}
	}
	if res[0].Duplicate || res[1].Duplicate || !res[2].Duplicate {
		t.Fatalf("duplicate flags = %v %v %v, want false false true", res[0].Duplicate, res[1].Duplicate, res[2].Duplicate)
	}
	info, err := s.JS.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.CachedInfo().State.Msgs; n != 2 {
		t.Fatalf("stream holds %d messages, want 2", n)
	}
}

// TestPublishBatchWaitsForRoomInTheWindow: a batch larger than the
// connection's window of unacknowledged publishes waits for room while the
// server is slow to acknowledge, instead of failing after the library's
// 200 ms stall (which made ingest answer 503 under a burst).
func TestPublishBatchWaitsForRoomInTheWindow(t *testing.T) {
	s := streamtest.New(t)
	// A responder that acknowledges every publish 300 ms late, in the
	// JetStream PubAck format.
	var seq sync.Mutex
	n := uint64(0)
	sub, err := s.NC.Subscribe("slow.>", func(m *nats.Msg) {
		seq.Lock()
		n++
		ack := fmt.Sprintf(`{"stream":"SLOW","seq":%d}`, n)
		seq.Unlock()
		time.AfterFunc(300*time.Millisecond, func() { _ = m.Respond([]byte(ack)) })
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	js, err := jetstream.New(s.NC, jetstream.WithPublishAsyncMaxPending(10))
	if err != nil {
		t.Fatal(err)
	}
	pub := stream.NewBus(js).Publisher()
	pub.Timeout = 10 * time.Second
	msgs := make([]stream.Msg, 35)
	for i := range msgs {
		msgs[i] = stream.Msg{Subject: "slow.x", ID: fmt.Sprint("m", i), Data: []byte("x")}
	}
	start := time.Now()
	for i, r := range pub.PublishBatch(context.Background(), msgs) {
		if r.Err != nil {
			t.Fatalf("msg %d after %s: %v", i, time.Since(start).Round(time.Millisecond), r.Err)
		}
	}
	// Bounded all the same: with no acknowledgement at all, the batch fails
	// at the publisher's timeout.
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	mute, err := s.NC.Subscribe("slow.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Unsubscribe()
	pub.Timeout = time.Second
	start = time.Now()
	failed := 0
	for _, r := range pub.PublishBatch(context.Background(), msgs) {
		if r.Err != nil {
			failed++
		}
	}
	if took := time.Since(start); failed != len(msgs) || took > 3*time.Second {
		t.Fatalf("unacknowledged batch: %d of %d failed after %s, want all within about 1s", failed, len(msgs), took)
	}
}

func TestConsumerAckPolicy(t *testing.T) {
	s := streamtest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pub := s.Bus.Publisher()
	for i := 0; i < 3; i++ {
		r := pub.Publish(ctx, stream.Msg{Subject: schemas.RefSubject(fmt.Sprintf("e%032x", i), schemas.TypeCase, "KZ-75"), ID: fmt.Sprint("e", i), Data: []byte(fmt.Sprint(i))})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	c, err := s.Bus.Consumer(ctx, stream.ConsumerSpec{
		Stream: schemas.StreamEvents, Durable: "t", Stage: schemas.DeadLetterStageProcess, MaxWait: 100 * time.Millisecond, RetryMin: 10 * time.Millisecond,
	}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, func(ctx context.Context, m stream.Msg) error {
			mu.Lock()
			defer mu.Unlock()
			d := string(m.Data)
			seen[d]++
			switch {
			case d == "1":
				return stream.Permanent(errors.New("bad input"))
			case d == "2" && seen[d] == 1:
				return errors.New("transient")
			}
			return nil
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.State(ctx)
		if err == nil && info.Pending == 0 && info.AckPending == 0 {
			mu.Lock()
			ok := seen["2"] >= 2
			mu.Unlock()
			if ok {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer did not settle: %+v", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if seen["0"] != 1 || seen["1"] != 1 || seen["2"] != 2 {
		t.Fatalf("deliveries = %v, want 0:1 1:1 2:2", seen)
	}
	// The permanent failure is in the dead-letter stream with its reason.
	m, err := s.Bus.LastMsg(context.Background(), schemas.StreamDeadLetter, schemas.DeadLetterSubject(schemas.DeadLetterStageProcess, "case"))
	if err != nil {
		t.Fatalf("dead letter: %v", err)
	}
	if got := m.Header.Get(schemas.HeaderReason); got != "bad input" || string(m.Data) != "1" {
		t.Fatalf("dead letter reason %q data %q", got, m.Data)
	}
}

func TestListDeadLetters(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	pub := s.Bus.Publisher()
	err := pub.PublishDeadLetters(ctx, []stream.DeadLetter{
		{Stage: schemas.DeadLetterStageIngest, Type: "case", Reason: "region: unknown", Data: []byte(`{"a":1}`), EventID: "e1", Ref: "e0123456789abcdef0123456789abcdef", Index: 0},
		{Stage: schemas.DeadLetterStageSink, Type: "case", Reason: "decode", Data: []byte(`x`), Subject: "epi.events.case.KZ-75", Sequence: 7, Index: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.Bus.ListDeadLetters(ctx, 0, 0, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("list: %v %d", err, len(all))
	}
	if all[0].Stage != "ingest" || all[0].Reason != "region: unknown" || all[0].Ref != "e0123456789abcdef0123456789abcdef" || string(all[0].Data) != `{"a":1}` {
		t.Fatalf("first: %+v", all[0])
	}
	if all[1].Origin != "epi.events.case.KZ-75" {
		t.Fatalf("second origin %q", all[1].Origin)
	}
	sink, _ := s.Bus.ListDeadLetters(ctx, 0, 0, "sink")
	if len(sink) != 1 || sink[0].Seq != 2 {
		t.Fatalf("stage filter: %+v", sink)
	}
	one, err := s.Bus.GetDeadLetter(ctx, 2)
	if err != nil || one.Reason != "decode" {
		t.Fatalf("get: %v %+v", err, one)
	}
}
