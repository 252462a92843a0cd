// The replay's logging: progress every Config.ProgressEvery, and the
// decider's per-decision lines held back.

package replay

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// progress logs the replay's progress periodically.
type progress struct {
	done chan struct{}
	wg   sync.WaitGroup
}

func startProgress(ctx context.Context, log *slog.Logger, every time.Duration, events *atomic.Uint64, total uint64) *progress {
	p := &progress{done: make(chan struct{})}
	start := time.Now()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-p.done:
				return
			case <-t.C:
			}
			n := events.Load()
			el := time.Since(start)
			log.Info("replay progress", "events", n, "of", total,
				"pct", fmt.Sprintf("%.1f", 100*float64(n)/float64(max(total, 1))),
				"events_per_s", int(float64(n)/el.Seconds()), "elapsed", el.Round(time.Second))
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}

// quiet passes only warnings and errors: the decider logs every decision at
// Info, which would drown the replay's progress.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn})
}

type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(as), min: m.min}
}

func (m minLevel) WithGroup(n string) slog.Handler { return minLevel{h: m.h.WithGroup(n), min: m.min} }
