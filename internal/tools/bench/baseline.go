package bench

// This file is the only one of the package, and the one outside
// pipeline/stream and the test kits, that uses the NATS and JetStream
// clients (internal/repotest allows it by name). The raw baselines publish
// straight to JetStream by nature: they measure the bus without the
// pipeline, the ceiling end to end is compared with. The latency phase and
// the write counts read the streams from outside the pipeline too. The
// client comes from the pipeline's own bus (Bus.JetStream, which exists for
// this file), so the baselines share its connection. On an external server
// (Config.External) this file also looks for epiwatch's streams before the
// run and deletes those the run created after it (checkAbsent,
// deleteStreams): the bus has no call that lists or deletes streams, by
// design.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// js is the raw JetStream context of the pipeline's bus.
func (b *bench) js() jetstream.JetStream { return b.bus.JetStream() }

// The scratch streams of the baseline publishes: the events stream's
// configuration on other subjects, deleted afterwards, so that the
// baselines leave nothing for the processors or the sink.
const (
	rawStream     = "BENCH_RAW"
	rawSubject    = "bench.raw"
	atomicStream  = "BENCH_RAW_ATOMIC"
	atomicSubject = "bench.atomic"
)

// ours reports whether the stream name is one of epiwatch's: a stream of
// the layout or the stream of a key-value bucket (KV_ and the schemas'
// bucket names, which all begin with epi_).
func (b *bench) ours(name string) bool {
	if strings.HasPrefix(name, "KV_epi_") {
		return true
	}
	for _, c := range b.cfg.Streams.StreamConfigs() {
		if c.Name == name {
			return true
		}
	}
	return false
}

// ourStreams lists epiwatch's streams and buckets on the server js reaches,
// each with its message count.
func (b *bench) ourStreams(ctx context.Context, js jetstream.JetStream) (map[string]uint64, error) {
	found := map[string]uint64{}
	l := js.ListStreams(ctx)
	for info := range l.Info() {
		if b.ours(info.Config.Name) {
			found[info.Config.Name] = info.State.Msgs
		}
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list the streams of %s: %w", b.cfg.NATSURL, err)
	}
	return found, nil
}

// checkAbsent refuses an external server that already has any of
// epiwatch's streams or buckets. Their names are fixed (schemas), so the
// run cannot keep to its own: it would feed a deployment's processors and
// sink (or read their state), and deleting the streams at the end would
// delete theirs.
func (b *bench) checkAbsent(ctx context.Context) error {
	bus, err := b.d.Dial(ctx)
	if err != nil {
		return err
	}
	defer bus.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	found, err := b.ourStreams(cctx, bus.JetStream())
	if err != nil {
		return err
	}
	if len(found) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(found))
	desc := make([]string, len(names))
	for i, n := range names {
		desc[i] = fmt.Sprintf("%s (%d messages)", n, found[n])
	}
	return cli.BadInputf("bench --external: %s already has epiwatch's streams or buckets: %s. "+
		"Their names are fixed, so bench runs only where there are none (it creates them and deletes them at the end): "+
		"point nats.url at a NATS without an epiwatch deployment, or, if they are a bench run's left with --keep, delete them (nats stream rm NAME)",
		b.cfg.NATSURL, strings.Join(desc, ", "))
}

// deleteStreams deletes epiwatch's streams and buckets from the external
// server after the run (none was there before it: checkAbsent).
func (b *bench) deleteStreams() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := b.ourStreams(ctx, b.js())
	if err != nil {
		b.progress("could not delete the run's streams: %v", err)
		return
	}
	for _, name := range slices.Sorted(maps.Keys(found)) {
		if err := b.js().DeleteStream(ctx, name); err != nil {
			b.progress("could not delete stream %s: %v", name, err)
		}
	}
	b.progress("deleted %d streams and buckets from %s", len(found), b.cfg.NATSURL)
}

// scratchStream creates a stream with the events stream's configuration on
// subject.>; the returned func deletes it.
func (b *bench) scratchStream(ctx context.Context, name, subject string) (func(), error) {
	js := b.js()
	var sc jetstream.StreamConfig
	for _, c := range b.cfg.Streams.StreamConfigs() {
		if c.Name == schemas.StreamEvents {
			sc = c
		}
	}
	sc.Name, sc.Subjects, sc.Description = name, []string{subject + ".>"}, "epiwatch bench: baseline publish (scratch)"
	if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
		return nil, fmt.Errorf("create stream %s: %w", name, err)
	}
	return func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := js.DeleteStream(dctx, name); err != nil {
			b.progress("could not delete the scratch stream %s: %v", name, err)
		}
	}, nil
}

// rawAtomic is the second baseline: the same messages in atomic batches of
// Config.Batch, Config.Senders at a time, the way ingest publishes a request
// (with its Nats-Msg-Id and expected-subject-sequence headers).
func (b *bench) rawAtomic(ctx context.Context, msgs []stream.Msg) error {
	drop, err := b.scratchStream(ctx, atomicStream, atomicSubject)
	if err != nil {
		return err
	}
	defer drop()
	size := min(b.cfg.Batch, stream.MaxAtomicBatch)
	batches := make(chan []stream.Msg, len(msgs)/size+1)
	for rest := msgs; len(rest) > 0; {
		n := min(size, len(rest))
		chunk := make([]stream.Msg, n)
		for i, m := range rest[:n] {
			tok, _, _ := strings.Cut(strings.TrimPrefix(m.Subject, schemas.SubjectEvents+"."), ".")
			chunk[i] = stream.Msg{Subject: atomicSubject + strings.TrimPrefix(m.Subject, schemas.SubjectEvents), ID: m.ID, Data: m.Data,
				Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}, jetstream.ExpectedLastSubjSeqSubjHeader: {atomicSubject + "." + tok + ".>"}}}
		}
		batches <- chunk
		rest = rest[n:]
	}
	close(batches)
	b.progress("raw atomic batches: %d messages to %s, %d per batch, %d at a time", len(msgs), atomicStream, size, b.cfg.Senders)
	pub := b.bus.Publisher()
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	for range b.cfg.Senders {
		g.Go(func() error {
			for chunk := range batches {
				if err := pub.PublishAtomic(gctx, chunk); err != nil {
					return fmt.Errorf("raw atomic batches: %w", err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	b.rep.RawAtomicSecs = elapsed.Seconds()
	b.rep.RawAtomicEPS = float64(len(msgs)) / elapsed.Seconds()
	b.progress("  %d in %s: %.0f events/s", len(msgs), elapsed.Round(time.Millisecond), b.rep.RawAtomicEPS)
	return nil
}

// rawPublish is the baseline: async publish with Nats-Msg-Id into the
// scratch stream, timed until every acknowledgement is in.
func (b *bench) rawPublish(ctx context.Context, msgs []stream.Msg) error {
	drop, err := b.scratchStream(ctx, rawStream, rawSubject)
	if err != nil {
		return err
	}
	defer drop()
	js, err := jetstream.New(b.js().Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return err
	}
	b.progress("raw publish: %d messages to %s", len(msgs), rawStream)
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	start := time.Now()
	for _, m := range msgs {
		nm := &nats.Msg{Subject: rawSubject + strings.TrimPrefix(m.Subject, schemas.SubjectEvents), Data: m.Data}
		for {
			f, err := js.PublishMsgAsync(nm, jetstream.WithMsgID(m.ID))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				select { // the window is full: let it drain
				case <-js.PublishAsyncComplete():
				case <-ctx.Done():
					return ctx.Err()
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("raw publish: %w", err)
			}
			futs = append(futs, f)
			break
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	elapsed := time.Since(start)
	failed := 0
	var firstErr error
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			if failed++; firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("raw publish: %d of %d not acknowledged: %w", failed, len(msgs), firstErr)
	}
	b.rep.RawPublishSecs = elapsed.Seconds()
	b.rep.RawPublishEPS = float64(len(msgs)) / elapsed.Seconds()
	b.progress("  %d in %s: %.0f events/s", len(msgs), elapsed.Round(time.Millisecond), b.rep.RawPublishEPS)
	return nil
}

// streamSeqs returns every stream's last sequence.
func (b *bench) streamSeqs(ctx context.Context) (map[string]uint64, error) {
	seqs := map[string]uint64{}
	l := b.js().ListStreams(ctx)
	for info := range l.Info() {
		seqs[info.Config.Name] = info.State.LastSeq
	}
	if err := l.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return seqs, nil
}

// watchLatency feeds t from two taps until the returned func stops them:
// the indicator records as they are published (region and version), and
// the events stream's sequence of each event (a headers-only ordered
// consumer: the Nats-Msg-Id is the event's ref).
func (b *bench) watchLatency(ctx context.Context, t *latencyTracker) (stop func(), err error) {
	sub, err := b.js().Conn().Subscribe(schemas.SubjectIndicators+".>", func(m *nats.Msg) {
		now := time.Now()
		var in struct {
			Region  string `json:"region"`
			Version uint64 `json:"version"`
		}
		if json.Unmarshal(m.Data, &in) != nil {
			return
		}
		t.indicator(in.Region, in.Version, now)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to the indicators: %w", err)
	}
	cons, err := b.js().OrderedConsumer(ctx, schemas.StreamEvents, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy, HeadersOnly: true})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch the events stream: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		md, err := m.Metadata()
		if err != nil {
			return
		}
		subj := m.Subject()
		t.stored(m.Headers().Get(jetstream.MsgIDHeader), subj[strings.LastIndexByte(subj, '.')+1:], md.Sequence.Stream)
	})
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch the events stream: %w", err)
	}
	return func() {
		cc.Stop()
		_ = sub.Unsubscribe()
	}, nil
}
