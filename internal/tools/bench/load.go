package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/schemas"
)

// endToEnd posts the events with concurrent senders and times until every
// accepted one is queryable in ClickHouse.
func (b *bench) endToEnd(ctx context.Context, url string, events []schemas.Event, waitLanded func(uint64) error) error {
	b.progress("end to end: %d events to %s, %d senders, %d per request", len(events), url, b.cfg.Senders, b.cfg.Batch)
	sender := b.sender(url, b.cfg.Batch)
	// The requests are encoded before the clock starts, as the raw phase's
	// messages are: the load generator shares the machine and its gzip would
	// be counted against the pipeline.
	var bodies []simulate.Body
	for rest := events; len(rest) > 0; {
		n := min(b.cfg.Batch, len(rest))
		body, err := simulate.Encode(rest[:n])
		if err != nil {
			return err
		}
		bodies = append(bodies, body)
		rest = rest[n:]
	}
	batches := make(chan simulate.Body)
	var mu sync.Mutex
	var total simulate.SendResult
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(batches)
		for _, body := range bodies {
			select {
			case batches <- body:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	start := time.Now()
	for range b.cfg.Senders {
		g.Go(func() error {
			for batch := range batches {
				res, err := sender.Post(gctx, batch)
				mu.Lock()
				total.Add(res)
				mu.Unlock()
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	accepted := time.Since(start)
	if total.Rejected > 0 || total.Duplicates > 0 {
		return fmt.Errorf("the ingest API accepted %d of %d events (%d duplicates, %d rejected, e.g. %v)", total.Accepted, len(events), total.Duplicates, total.Rejected, total.Rejections[:min(len(total.Rejections), 3)])
	}
	b.rep.IngestSecs = accepted.Seconds()
	b.rep.IngestEPS = float64(total.Accepted) / accepted.Seconds()
	b.progress("  accepted %d in %s (%.0f events/s); waiting until ClickHouse has them", total.Accepted, accepted.Round(time.Millisecond), b.rep.IngestEPS)
	if err := waitLanded(uint64(total.Accepted)); err != nil {
		return err
	}
	elapsed := time.Since(start)
	b.rep.EndToEndSecs = elapsed.Seconds()
	b.rep.EndToEndEPS = float64(total.Accepted) / elapsed.Seconds()
	if b.rep.RawPublishEPS > 0 {
		b.rep.Ratio = b.rep.EndToEndEPS / b.rep.RawPublishEPS
	}
	if b.rep.RawAtomicEPS > 0 {
		b.rep.RatioAtomic = b.rep.EndToEndEPS / b.rep.RawAtomicEPS
	}
	b.progress("  in ClickHouse after %s: %.0f events/s", elapsed.Round(time.Millisecond), b.rep.EndToEndEPS)
	return nil
}

func (b *bench) sender(url string, batch int) *simulate.Sender {
	return &simulate.Sender{
		Client: &http.Client{Timeout: 60 * time.Second}, URL: url, Batch: batch,
		OnRetry: func(reason string, wait time.Duration) {
			b.progress("  ingest API busy (%s); retrying in %s", cli.OneLine(reason), wait.Round(time.Millisecond))
		},
	}
}

// offer posts events at a fixed rate for d, in batches of a fiftieth of a
// second's worth, each batch in its own request so that a slow answer does
// not lower the offered load (up to 256 requests in flight). Past the end of
// pool it starts over under fresh event_ids. accepted hears of every batch
// the API accepted, with the time of the answer. A batch the API keeps
// refusing (503: the pipeline cannot keep up with the offered load) is
// retried for up to 30 s and then counted as refused, not an error: an
// overloaded pipeline is a result.
func (b *bench) offer(ctx context.Context, url string, pool []schemas.Event, rate float64, d time.Duration, accepted func([]schemas.Event, time.Time)) (res offerResult, err error) {
	batch := max(1, int(rate/50))
	interval := time.Duration(float64(batch) / rate * float64(time.Second))
	var mu sync.Mutex
	var busy sync.Once
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(256)
	start := time.Now()
	next, round := 0, 0
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			break
		}
		if wait := time.Until(at); wait > 0 {
			select {
			case <-gctx.Done():
			case <-time.After(wait):
			}
		}
		if gctx.Err() != nil {
			break
		}
		events := make([]schemas.Event, 0, batch)
		for len(events) < batch {
			if next == len(pool) {
				next, round = 0, round+1
			}
			e := pool[next]
			e.EventID = fmt.Sprintf("bench%d-r%d-%s", b.cfg.RunID, round, e.EventID)
			events = append(events, e)
			next++
		}
		g.Go(func() error {
			bctx, cancel := context.WithTimeout(gctx, 30*time.Second)
			defer cancel()
			s := &simulate.Sender{Client: http.DefaultClient, URL: url, Batch: batch, MaxWait: time.Hour,
				OnRetry: func(reason string, _ time.Duration) {
					busy.Do(func() {
						b.progress("  the ingest API refuses requests (%s): the pipeline cannot keep up", cli.OneLine(reason))
					})
				}}
			r, err := s.Send(bctx, events)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if errors.Is(err, context.DeadlineExceeded) && bctx.Err() != nil && gctx.Err() == nil {
					res.Refused += len(events)
					return nil
				}
				return err
			}
			if accepted != nil {
				accepted(events, time.Now())
			}
			res.Add(r)
			return nil
		})
	}
	err = g.Wait()
	res.Elapsed = time.Since(start)
	if err == nil && res.Rejected > 0 {
		err = fmt.Errorf("the ingest API rejected %d events, e.g. %v", res.Rejected, res.Rejections[:min(len(res.Rejections), 3)])
	}
	return res, err
}

type offerResult struct {
	simulate.SendResult
	Refused int // in batches the API still refused after 30 s
	Elapsed time.Duration
}
