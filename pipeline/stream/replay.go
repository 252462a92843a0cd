package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReadAll hands each message of streamName on filter to each, from start
// (nil: the first message) up to the stream's last message when ReadAll
// began, through an ordered consumer (nothing acknowledged). It is how a
// stage rebuilds its in-memory state at start before its durable consumer
// delivers what follows; it returns the messages read. A pause of 2 s with
// nothing delivered means the rest aged out meanwhile and ends the read.
func ReadAll(ctx context.Context, js jetstream.JetStream, streamName, filter string, start *time.Time, each func(jetstream.Msg)) (int, error) {
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return 0, fmt.Errorf("open stream %s (created by stream.EnsureStreams): %w", streamName, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream %s info: %w", streamName, err)
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	last := info.State.LastSeq
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}, InactiveThreshold: 30 * time.Second}
	if start != nil {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, start
	}
	oc, err := js.OrderedConsumer(ctx, streamName, cfg)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", streamName, err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", streamName, err)
	}
	defer it.Stop()
	n := 0
	for {
		nctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := it.Next(jetstream.NextContext(nctx))
		cancel()
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		if errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read %s: %w", streamName, err)
		}
		each(m)
		n++
		if meta, err := m.Metadata(); err == nil && meta.Sequence.Stream >= last {
			return n, nil
		}
	}
}
