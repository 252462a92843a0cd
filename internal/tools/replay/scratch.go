// The replay's scratch JetStream (an embedded server in a temporary
// directory, discarded at the end) and the waits on its consumers.

package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// scratch is the replay's own embedded JetStream.
type scratch struct {
	dir string
	srv *stream.Embedded
	bus *stream.Bus
}

func startScratch(workDir string) (*scratch, error) {
	dir, err := os.MkdirTemp(workDir, "epiwatch-replay-")
	if err != nil {
		return nil, fmt.Errorf("create the replay's scratch directory in %q: %w", workDir, err)
	}
	// No fsync per acknowledgement: the store is thrown away, and a crash
	// means running the replay again.
	srv, err := stream.StartEmbedded(stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: dir, SyncInterval: 2 * time.Minute})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the replay's scratch NATS: %w", err)
	}
	s := &scratch{dir: dir, srv: srv}
	s.bus, err = stream.Open(srv.ClientURL(), "epiwatch-replay", stream.ClientConfig{})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = s.bus.Ensure(ctx, stream.DefaultConfig())
		cancel()
	}
	if err != nil {
		s.close(nil)
		return nil, fmt.Errorf("replay's scratch JetStream: %w", err)
	}
	return s, nil
}

func (s *scratch) close(log *slog.Logger) {
	if s.bus != nil {
		s.bus.Close()
	}
	s.srv.Shutdown()
	if err := os.RemoveAll(s.dir); err != nil && log != nil {
		log.Warn("could not remove the replay's scratch directory", "dir", s.dir, "err", err)
	}
}

// waitConsumer waits until the durable consumer exists.
func waitConsumer(ctx context.Context, bus *stream.Bus, streamName, durable string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := bus.ConsumerInfo(ctx, streamName, durable)
		if err == nil {
			return nil
		}
		if !errors.Is(err, stream.ErrConsumerNotFound) || time.Now().After(deadline) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("scratch consumer %s on %s did not start: %w", durable, streamName, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitDrained waits until consumer c has been delivered every message its
// stream holds and has acknowledged them all.
func waitDrained(ctx context.Context, bus *stream.Bus, c Consumer, log *slog.Logger, every time.Duration) error {
	if err := waitConsumer(ctx, bus, c.Stream, c.Durable); err != nil {
		return err
	}
	last := time.Now()
	for {
		si, err := bus.StreamInfo(ctx, c.Stream)
		if err != nil {
			return fmt.Errorf("scratch stream: %w", err)
		}
		ci, err := bus.ConsumerInfo(ctx, c.Stream, c.Durable)
		if err != nil {
			return fmt.Errorf("scratch consumer: %w", err)
		}
		if ci.Pending == 0 && ci.AckPending == 0 && ci.AckFloor >= si.LastSeq {
			return nil
		}
		if time.Since(last) >= every {
			last = time.Now()
			log.Info("replay: waiting", "consumer", c.Durable, "stream", c.Stream, "pending", ci.Pending+uint64(ci.AckPending))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
