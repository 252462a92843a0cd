package bench

import (
	"context"
	"runtime"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// soak offers the rate for the soak duration and compares heap and
// goroutines at the start and at the end, once ClickHouse has caught up.
func (b *bench) soak(ctx context.Context, url string, pool []schemas.Event, waitLanded func(uint64) error, count func() (uint64, error)) error {
	heap0, gr0 := memStats()
	before, err := count()
	if err != nil {
		return err
	}
	b.progress("soak: offering %.0f events/s for %s (heap in use %s, %d goroutines)", b.cfg.Rate, b.cfg.Soak, mib(heap0), gr0)
	stopTicker, tickerDone := make(chan struct{}), make(chan struct{})
	// A line a minute; perMinute is the ticker goroutine's until tickerDone.
	var perMinute []uint64
	go func() {
		defer close(tickerDone)
		tk := time.NewTicker(time.Minute)
		defer tk.Stop()
		for {
			select {
			case <-stopTicker:
				return
			case <-tk.C:
				h, g := memStats()
				perMinute = append(perMinute, h)
				b.progress("  heap in use %s, %d goroutines", mib(h), g)
			}
		}
	}()
	res, err := b.offer(ctx, url, pool, b.cfg.Rate, b.cfg.Soak, nil)
	elapsed := res.Elapsed
	close(stopTicker)
	<-tickerDone
	if err != nil {
		return err
	}
	b.progress("  accepted %d in %s; waiting until ClickHouse has them", res.Accepted, elapsed.Round(time.Second))
	if err := waitLanded(before + uint64(res.Accepted)); err != nil {
		return err
	}
	landed, err := count()
	if err != nil {
		return err
	}
	heap1, gr1 := memStats()
	b.rep.Events = 0
	b.rep.Soak = &soakReport{
		Seconds: elapsed.Seconds(), Accepted: res.Accepted, Refused: res.Refused, AcceptedEPS: float64(res.Accepted) / elapsed.Seconds(), Landed: landed - before,
		HeapInuseStart: heap0, HeapInuseEnd: heap1, GoroutinesStart: gr0, GoroutinesEnd: gr1,
	}
	b.rep.Soak.HeapPerMinute = perMinute
	b.rep.Soak.HeapPerEvent = heapPerEvent(perMinute, b.cfg.Rate, res.Accepted, res.Refused)
	return nil
}

// memStats is the heap in use after a garbage collection and the number of
// goroutines: what a leak would grow.
func memStats() (heapInuse uint64, goroutines int) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse, runtime.NumGoroutine()
}
