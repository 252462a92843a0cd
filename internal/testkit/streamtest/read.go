package streamtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredMsg is one message as a stream holds it.
type StoredMsg struct {
	Seq     uint64
	Time    time.Time
	Subject string
	Header  nats.Header
	Data    []byte
}

// Messages returns every message stream holds now, in sequence order, read
// with an ordered consumer (fast for large streams, nothing acknowledged).
func Messages(t testing.TB, js jetstream.JetStream, stream string) []StoredMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("open stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}
	oc, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("read stream %s: %v", stream, err)
	}
	var out []StoredMsg
	for uint64(len(out)) < info.State.Msgs {
		b, err := oc.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatalf("read stream %s: %v", stream, err)
		}
		for m := range b.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, StoredMsg{Seq: meta.Sequence.Stream, Time: meta.Timestamp, Subject: m.Subject(), Header: m.Headers(), Data: append([]byte(nil), m.Data()...)})
			if meta.Sequence.Stream >= info.State.LastSeq {
				return out
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read stream %s: %v", stream, err)
		}
		if ctx.Err() != nil {
			t.Fatalf("read stream %s: %d of %d messages in 30 s", stream, len(out), info.State.Msgs)
		}
	}
	return out
}
