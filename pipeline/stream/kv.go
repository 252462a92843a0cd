package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Key-value errors, whatever the client said (errors.Is; the client's
// message is kept).
var (
	// ErrKeyNotFound: the key is absent, deleted, or not a valid key (so it
	// cannot exist).
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists: Create found the key present.
	ErrKeyExists = errors.New("key exists")
	// ErrWrongRevision: a compare-and-set (Update) lost: the key is no
	// longer at the revision given — someone else wrote it.
	ErrWrongRevision = errors.New("key changed since the revision given")
)

// KV is a key-value bucket with compare-and-set writes: the checkpoints,
// restriction levels, alert claims and key fingerprints.
type KV struct {
	kv jetstream.KeyValue
}

// Entry is one key's value and revision.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time // when this revision was stored (the server's clock)
}

// KV opens bucket (created by Ensure).
func (b *Bus) KV(ctx context.Context, bucket string) (*KV, error) {
	kv, err := b.js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s (created by Bus.Ensure): %w", bucket, err)
	}
	return &KV{kv: kv}, nil
}

// kvError maps a client error to ours.
func kvError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) || errors.Is(err, jetstream.ErrInvalidKey):
		return tagged{ErrKeyNotFound, err}
	}
	return err
}

// casError maps the error of a compare-and-set write: the client reports a
// lost one as "key exists" (wrong last sequence) or a revision mismatch.
func casError(err error) error {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return tagged{ErrWrongRevision, err}
	}
	return kvError(err)
}

func entry(e jetstream.KeyValueEntry) Entry {
	return Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created()}
}

// Get reads key's current value; ErrKeyNotFound if it has none.
func (k *KV) Get(ctx context.Context, key string) (Entry, error) {
	e, err := k.kv.Get(ctx, key)
	if err != nil {
		return Entry{}, kvError(err)
	}
	return entry(e), nil
}

// Put writes key unconditionally and returns the new revision.
func (k *KV) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := k.kv.Put(ctx, key, value)
	return rev, kvError(err)
}

// Create writes key only if it has no value (create-if-absent);
// ErrKeyExists if it has one.
func (k *KV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := k.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, tagged{ErrKeyExists, err}
	}
	return rev, kvError(err)
}

// Update writes key only if it is still at revision rev (compare-and-set);
// ErrWrongRevision if someone else wrote it since.
func (k *KV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	nrev, err := k.kv.Update(ctx, key, value, rev)
	return nrev, casError(err)
}

// Keys lists the keys matching filter (a subject filter such as
// "process.state.>"; none: every key).
func (k *KV) Keys(ctx context.Context, filter ...string) ([]string, error) {
	var l jetstream.KeyLister
	var err error
	if len(filter) == 0 {
		l, err = k.kv.ListKeys(ctx)
	} else {
		l, err = k.kv.ListKeysFiltered(ctx, filter...)
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for key := range l.Keys() {
		keys = append(keys, key)
	}
	// Stop only releases the watcher; once the list is read it has nothing
	// to say (nats.go reports the subscription it closed itself as invalid).
	_ = l.Stop()
	return keys, nil
}

// All returns the current entries of the keys matching filter.
func (k *KV) All(ctx context.Context, filter string) (map[string]Entry, error) {
	w, err := k.kv.Watch(ctx, filter, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	out := map[string]Entry{}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watcher closed")
			}
			if e == nil { // the current values are all in
				return out, nil
			}
			out[e.Key()] = entry(e)
		}
	}
}

// Purge removes key and its history.
func (k *KV) Purge(ctx context.Context, key string) error { return kvError(k.kv.Purge(ctx, key)) }

// PurgeDeletes removes the bucket's old delete markers.
func (k *KV) PurgeDeletes(ctx context.Context) error { return k.kv.PurgeDeletes(ctx) }
