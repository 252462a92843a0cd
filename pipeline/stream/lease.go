package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/schemas"
)

// ErrLeaseLost is the cause of the context RunExclusive gives its function
// when another replica took the lease: the function must stop without
// writing anything more (the processor skips its final checkpoint).
var ErrLeaseLost = errors.New("lease lost to another replica")

// ErrLeaseUnconfirmed is what Lease.Check returns when the lease's last
// confirmed renewal is older than two thirds of its TTL: it may expire before
// a write that starts now lands, so the holder must not start one.
var ErrLeaseUnconfirmed = errors.New("lease not confirmed recently enough to write")

// Lease is the fencing side of a held lease, handed to the function
// RunExclusive runs. Writers check it right before every write to shared
// state (a checkpoint, a published record, a decision) and stamp its Token
// on what they write. A nil *Lease is the unfenced case (one replica, tests):
// Check passes and Token is 0.
//
// Why a clock and not only the renewal's answer: the lease key expires on
// the server TTL after the last renewal the server applied, which is after
// the moment this replica sent it. Refusing to write once two thirds of the
// TTL have passed since the last confirmed renewal was sent leaves a third of
// the TTL (2 s by default) for a write in flight to land before any standby
// can acquire the key. Only durations on one machine's monotonic clock are
// compared; no clocks need to agree.
type Lease struct {
	name  string
	token uint64
	ttl   time.Duration

	mu        sync.Mutex
	confirmed time.Time // when the last applied renewal (or the acquisition) was sent
	lost      bool
}

// Token is the fencing token: the lease key's revision when this replica
// acquired it. Revisions only grow, so a later holder's token is larger.
func (l *Lease) Token() uint64 {
	if l == nil {
		return 0
	}
	return l.token
}

// Check returns nil while the lease is certainly held, ErrLeaseLost once
// another replica holds it, and ErrLeaseUnconfirmed when renewals have not
// been confirmed for two thirds of the TTL (NATS unreachable, or this
// process stalled).
func (l *Lease) Check() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.lost:
		return fmt.Errorf("lease %s (token %d): %w", l.name, l.token, ErrLeaseLost)
	case time.Since(l.confirmed) > l.ttl*2/3:
		return fmt.Errorf("lease %s (token %d): last confirmed %s ago, TTL %s: %w", l.name, l.token, time.Since(l.confirmed).Round(time.Millisecond), l.ttl, ErrLeaseUnconfirmed)
	}
	return nil
}

func (l *Lease) confirm(sent time.Time) {
	l.mu.Lock()
	if sent.After(l.confirmed) {
		l.confirmed = sent
	}
	l.mu.Unlock()
}

func (l *Lease) lose() {
	l.mu.Lock()
	l.lost = true
	l.mu.Unlock()
}

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
// ours. fn receives the Lease: its Check fences every write (see Lease), its
// Token is stamped on what the holder writes; the checkpoint manifest and the
// decision levels also carry compare-and-sets of their own.
func runExclusive(ctx context.Context, js jetstream.JetStream, name, holder string, log *slog.Logger, fn func(ctx context.Context, l *Lease) error) error {
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
	var sent time.Time
	said := false
	for {
		sent = time.Now()
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
	lease := &Lease{name: name, token: rev, ttl: ttl, confirmed: sent}

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
			sent := time.Now()
			next, err := kv.Update(rctx, key, []byte(holder), rev)
			rcancel()
			switch {
			case err == nil:
				rev = next
				lease.confirm(sent)
			case fctx.Err() != nil:
				return
			case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
				// A renewal whose answer was lost (NATS restarting) may have
				// been applied: the key then holds our name at a newer
				// revision. After an outage longer than the TTL it may be
				// gone, and ours again if nobody took it meanwhile.
				// Only the key's state now counts: confirmed from the
				// moment of this read, not of the lost renewal.
				sent := time.Now()
				if next, ok := reclaim(fctx, kv, key, holder); ok {
					log.Warn("lease: renewal answer lost or lease expired during an outage; still held", "lease", name, "token", lease.token, "revision", next)
					rev = next
					lease.confirm(sent)
					continue
				}
				log.Error("lease lost: another replica holds it; stopping", "lease", name, "holder", holder, "err", err)
				lease.lose()
				cancel(ErrLeaseLost)
				return
			default:
				// NATS unreachable: keep trying until the key is seen gone.
				log.Warn("lease: renewal failed; retrying", "lease", name, "err", err)
			}
		}
	}()
	err = fn(fctx, lease)
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
