package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/schemas"
)

// ErrLeaseLost is the cause of the context RunExclusive gives its function
// when another replica took the lease: the function must stop without
// writing anything more (the processor skips its final checkpoint).
var ErrLeaseLost = errors.New("lease lost to another replica")

// DefaultLeaseTTL is how long a lease outlives its last renewal (the
// schemas.BucketLeases bucket's TTL): the longest a dead active replica
// holds up its standby.
const DefaultLeaseTTL = 6 * time.Second

// runExclusive runs fn in exactly one of the replicas that call it with the
// same name: the one holding the lease, a key in schemas.BucketLeases
// created if absent and renewed every TTL/3 by a compare-and-set on its
// revision. The others wait as hot standbys, trying every TTL/6; when the
// active replica dies its key expires after the bucket's TTL and one
// standby takes over. A holder whose renewal fails (the key changed or
// vanished: it was too slow, or partitioned away) cancels fn's context
// with ErrLeaseLost and returns that error once fn has returned. holder
// names the replica in the key's value and in logs.
//
// The lease is NATS KV's own compare-and-set and TTL, not an election of
// ours; its token (the revision at acquisition) fences the checkpoint and
// decision writes that already carry compare-and-sets of their own.
func runExclusive(ctx context.Context, js jetstream.JetStream, name, holder string, log *slog.Logger, fn func(ctx context.Context) error) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kv, err := js.KeyValue(ctx, schemas.BucketLeases)
	if err != nil {
		return fmt.Errorf("open bucket %s (created by Bus.Ensure): %w", schemas.BucketLeases, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return fmt.Errorf("bucket %s status: %w", schemas.BucketLeases, err)
	}
	ttl := st.TTL()
	if ttl <= 0 {
		return fmt.Errorf("bucket %s has no TTL: a dead holder would keep its lease for ever (recreate it with Bus.Ensure)", schemas.BucketLeases)
	}
	key := "lease." + name
	// Acquire, or wait as standby.
	var rev uint64
	said := false
	for {
		rev, err = kv.Create(ctx, key, []byte(holder))
		if err == nil {
			break
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("lease: acquiring failed; retrying", "lease", name, "err", err)
		} else if !said {
			said = true
			by := "another replica"
			if e, gerr := kv.Get(ctx, key); gerr == nil {
				by = string(e.Value())
			}
			log.Info("standby: another replica holds the lease; waiting to take over", "lease", name, "holder", by, "ttl", ttl)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(ttl / 6):
		}
	}
	log.Info("lease acquired: active", "lease", name, "holder", holder, "token", rev)

	fctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-fctx.Done():
				return
			case <-t.C:
			}
			rctx, rcancel := context.WithTimeout(fctx, ttl/3)
			next, err := kv.Update(rctx, key, []byte(holder), rev)
			rcancel()
			switch {
			case err == nil:
				rev = next
			case fctx.Err() != nil:
				return
			case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
				// A renewal whose answer was lost (NATS restarting) may have
				// been applied: the key then holds our name at a newer
				// revision. After an outage longer than the TTL it may be
				// gone, and ours again if nobody took it meanwhile.
				if next, ok := reclaim(fctx, kv, key, holder); ok {
					log.Warn("lease: renewal answer lost or lease expired during an outage; still held", "lease", name, "token", next)
					rev = next
					continue
				}
				log.Error("lease lost: another replica holds it; stopping", "lease", name, "holder", holder, "err", err)
				cancel(ErrLeaseLost)
				return
			default:
				// NATS unreachable: keep trying until the key is seen gone.
				log.Warn("lease: renewal failed; retrying", "lease", name, "err", err)
			}
		}
	}()
	err = fn(fctx)
	lost := errors.Is(context.Cause(fctx), ErrLeaseLost)
	cancel(nil)
	<-renewed
	if lost {
		return fmt.Errorf("%s: %w", name, ErrLeaseLost)
	}
	// A clean stop hands over at once instead of after the TTL.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer dcancel()
	derr := kv.Delete(dctx, key, jetstream.LastRevision(rev))
	if errors.Is(derr, jetstream.ErrKeyExists) || errors.Is(derr, jetstream.ErrKeyRevisionMismatch) {
		// A renewal cut short by the stop may have been applied.
		if e, gerr := kv.Get(dctx, key); gerr == nil && string(e.Value()) == holder {
			derr = kv.Delete(dctx, key, jetstream.LastRevision(e.Revision()))
		}
	}
	if derr != nil {
		log.Debug("lease: release failed; it expires by itself", "lease", name, "err", derr)
	}
	return err
}

// reclaim reports whether the lease key still (or again) names holder, and
// its revision: the key holds holder's name, or it is absent and holder
// creates it anew.
func reclaim(ctx context.Context, kv jetstream.KeyValue, key, holder string) (uint64, bool) {
	e, err := kv.Get(ctx, key)
	switch {
	case err == nil && string(e.Value()) == holder:
		return e.Revision(), true
	case errors.Is(err, jetstream.ErrKeyNotFound) || (err == nil && e.Operation() != jetstream.KeyValuePut):
		if rev, cerr := kv.Create(ctx, key, []byte(holder)); cerr == nil {
			return rev, true
		}
	}
	return 0, false
}
