package bench

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// latencyTracker joins three sources: when the API accepted an event, its
// sequence in the events stream, and the arrival of indicator records with
// their versions (the taps: watchLatency).
type latencyTracker struct {
	mu sync.Mutex
	// ref names an accepted event as the events stream does (its
	// Nats-Msg-Id: schemas.EventRefs.Ref); nil in tests: the event_id.
	ref      func(source, eventID string) string
	accepted map[string]time.Time
	seq      map[string]eventSeq
	ind      map[string][]indicatorArrival // by region, in arrival order
	lastInd  time.Time
}

type eventSeq struct {
	region string
	seq    uint64
}

type indicatorArrival struct {
	at      time.Time
	version uint64
}

func newLatencyTracker() *latencyTracker {
	return &latencyTracker{accepted: map[string]time.Time{}, seq: map[string]eventSeq{}, ind: map[string][]indicatorArrival{}}
}

// accept records that the API accepted events at at.
func (t *latencyTracker) accept(events []schemas.Event, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range events {
		id := events[i].EventID
		if t.ref != nil {
			id = t.ref(events[i].Source, id)
		}
		t.accepted[id] = at
	}
}

// stored records the events-stream sequence of the event with id id (its
// Nats-Msg-Id).
func (t *latencyTracker) stored(id, region string, seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq[id] = eventSeq{region, seq}
}

// indicator records an indicator record of region at version, arrived at at.
func (t *latencyTracker) indicator(region string, version uint64, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ind[region] = append(t.ind[region], indicatorArrival{at, version})
	t.lastInd = at
}

// latency offers Config.Rate for Config.LatencyDuration of pool's events
// and measures, per accepted event, the time from the API's answer to the
// first indicator record of its region that covers it.
func (b *bench) latency(ctx context.Context, url string, pool []schemas.Event) error {
	t := newLatencyTracker()
	refs, err := stream.LoadEventRefs(ctx, b.bus)
	if err != nil {
		return err
	}
	t.ref = refs.Ref
	stop, err := b.watchLatency(ctx, t)
	if err != nil {
		return err
	}
	defer stop()

	b.progress("latency: offering %.0f events/s for %s", b.cfg.Rate, b.cfg.LatencyDuration)
	res, err := b.offer(ctx, url, pool, b.cfg.Rate, b.cfg.LatencyDuration, t.accept)
	if err != nil {
		return err
	}
	elapsed := res.Elapsed
	b.rep.LatencyRate = b.cfg.Rate
	b.rep.LatencyEvents = res.Accepted + res.Duplicates // a batch retried after a timeout may have been stored
	b.rep.LatencyRefused = res.Refused
	b.rep.LatencySecs = elapsed.Seconds()
	b.rep.LatencyEPS = float64(b.rep.LatencyEvents) / elapsed.Seconds()
	b.progress("  accepted %d in %s (%.0f events/s); waiting for the indicators", b.rep.LatencyEvents, elapsed.Round(time.Millisecond), b.rep.LatencyEPS)

	// Wait until every accepted event is covered, or indicators stop coming.
	for {
		lat, pending := t.latencies()
		if pending == 0 || time.Since(t.lastArrival()) > 15*time.Second {
			if pending > 0 {
				b.progress("  %d events not covered by an indicator record", pending)
			}
			b.rep.LatencyMatched = len(lat)
			if len(lat) > 0 {
				b.rep.LatencyP50Ms = ms(percentile(lat, 0.50))
				b.rep.LatencyP99Ms = ms(percentile(lat, 0.99))
				b.rep.LatencyMaxMs = ms(lat[len(lat)-1])
			}
			b.progress("  p50 %.0f ms, p99 %.0f ms over %d events", b.rep.LatencyP50Ms, b.rep.LatencyP99Ms, len(lat))
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (t *latencyTracker) lastArrival() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastInd
}

// latencies returns the sorted latencies of the covered events and how many
// accepted events are not covered yet. An event is covered by the first
// record of its region whose version reaches its sequence; the record may
// come before the API's answer did (then 0).
func (t *latencyTracker) latencies() ([]time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	reach := make(map[string][]uint64, len(t.ind)) // running maximum of the versions
	for region, arr := range t.ind {
		m := make([]uint64, len(arr))
		for i, x := range arr {
			m[i] = x.version
			if i > 0 {
				m[i] = max(m[i], m[i-1])
			}
		}
		reach[region] = m
	}
	var out []time.Duration
	pending := 0
	for id, at := range t.accepted {
		s, ok := t.seq[id]
		if !ok {
			pending++
			continue
		}
		m := reach[s.region]
		i := sort.Search(len(m), func(i int) bool { return m[i] >= s.seq })
		if i == len(m) {
			pending++
			continue
		}
		out = append(out, max(0, t.ind[s.region][i].at.Sub(at)))
	}
	slices.Sort(out)
	return out, pending
}
