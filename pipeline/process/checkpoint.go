package process

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// Checkpoint layout in the key-value bucket schemas.BucketProcessState
// (History 1):
//
//	process.manifest                   JSON manifest: the stream sequence the
//	                                   state covers and, per region, where its
//	                                   blob is (slot, parts, size, SHA-256)
//	process.state.<region>.<slot>.<n>  part n of the region's blob; slot is
//	                                   <writer>-<k>: writer a random id of
//	                                   the processor instance, k that
//	                                   instance's checkpoint count
//
// Why this shape:
//   - Split per region: a checkpoint rewrites only the regions that changed
//     since the last one, and no value has to hold the whole state.
//   - Parts of at most partSize bytes: a region's blob can outgrow a NATS
//     message (1 MiB by default on a NATS server).
//   - Every checkpoint writes its parts under keys of its own (a new slot)
//     and then replaces the manifest, the only commit point. No write ever
//     lands on a key a manifest may reference: not after a crash before the
//     manifest write, not from a second processor running by mistake, and
//     not when a manifest update committed but its answer was lost (the
//     next save would otherwise reuse a slot the committed manifest points
//     at, and the restart would find parts that do not match).
//   - The manifest is replaced with a compare-and-set on its revision: of two
//     processors sharing the durable consumer (a deployment error) one
//     commits and the other gets errCheckpointConflict, which stops it
//     (Processor.Run returns it) instead of a warning.
//   - Once a manifest is committed, the parts it replaced are purged (known
//     unreferenced: the compare-and-set proved the previous manifest was the
//     current one). After its first commit an instance also purges the parts
//     of earlier instances that the manifest no longer references — only
//     parts written before that commit, so a processor starting meanwhile
//     keeps its own. Purge markers are removed now and then (PurgeDeletes).
//
// The JetStream object store would do the chunking, but it needs a bucket
// schemas does not name and rewrites whole objects; per-region parts in the
// processor's own bucket are simpler and incremental.
const (
	manifestKey    = "process.manifest"
	manifestFormat = 1
	partSize       = 512 << 10
	// purgeDeletesEvery checkpoints, the purge markers of replaced parts are
	// removed (every part key is used once, so each leaves a marker).
	purgeDeletesEvery = 64
)

type regionRef struct {
	Slot   string `json:"slot"`
	Parts  int    `json:"parts"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

type manifest struct {
	Format  int                  `json:"format"`
	Seq     uint64               `json:"seq"`                   // the events-stream sequence every one up to which the state holds (the low-watermark)
	Above   []uint64             `json:"above,omitempty"`       // the sequences above Seq the state holds too, ascending
	Lease   uint64               `json:"lease_token,omitempty"` // the writer's fencing token (stream.Lease), 0 unfenced
	Written time.Time            `json:"written"`
	Regions map[string]regionRef `json:"regions"`
	// Erasures is the sequence of the last erasure record
	// (schemas.StreamErasures) the state reflects; Floor and FloorNanos
	// the engine's versionFloor since then.
	Erasures   uint64 `json:"erasures_seq,omitempty"`
	Floor      uint64 `json:"version_floor,omitempty"`
	FloorNanos int64  `json:"version_floor_nanos,omitempty"`
}

// checkpointStore reads and writes checkpoints. It remembers the manifest it
// last read or wrote, and its revision.
type checkpointStore struct {
	kv  *stream.KV
	man manifest
	rev uint64
	// writer names this instance's slots (random, set by newCheckpointStore
	// or on first save); cleaned is set once earlier instances' parts are
	// purged.
	writer  string
	cleaned bool
	// saves counts this instance's checkpoints: the slot of the next one.
	saves uint64
	// erasures and floor are written into the next manifest (set from the
	// loaded one, and by a rebuild after an erasure).
	erasures uint64
	floor    versionFloor
	// unsure is the manifest of the last save whose commit got no answer
	// (a timeout, a connection lost): the server may have applied it. The
	// next save finds out before its compare-and-set, which would
	// otherwise take our own commit for another writer's (a conflict,
	// which stops the processor).
	unsure *manifestWrite
	// forgot is set by forgetRegions until the next commit: a manifest
	// write settled meanwhile must not bring the forgotten regions back.
	forgot bool
}

// manifestWrite is a manifest being committed and what its commit replaces.
type manifestWrite struct {
	data     []byte // next, encoded: compared byte for byte with what the server holds
	next     manifest
	replaced map[string]regionRef // the previous manifest's regions
	codes    []string             // the regions written, under slot
	slot     string
}

// newCheckpointStore opens the store with a fresh writer id.
func newCheckpointStore(kv *stream.KV) *checkpointStore {
	return &checkpointStore{kv: kv, writer: newWriterID()}
}

func newWriterID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func partKey(region, slot string, n int) string {
	return "process.state." + region + "." + slot + "." + strconv.Itoa(n)
}

// errCheckpointConflict means the manifest changed under us.
var errCheckpointConflict = errors.New("checkpoint manifest was changed by someone else: is a second processor running on the same durable consumer?")

// load reads the latest checkpoint: the sequences it covers and every
// region's blob. No checkpoint yet covers nothing and has no blobs.
func (c *checkpointStore) load(ctx context.Context) (doneSeqs, map[string][]byte, error) {
	entry, err := c.kv.Get(ctx, manifestKey)
	if errors.Is(err, stream.ErrKeyNotFound) {
		c.man, c.rev, c.unsure = manifest{Format: manifestFormat, Regions: map[string]regionRef{}}, 0, nil
		return doneSeqs{}, nil, nil
	}
	if err != nil {
		return doneSeqs{}, nil, fmt.Errorf("read checkpoint manifest %s: %w", manifestKey, err)
	}
	var m manifest
	if err := json.Unmarshal(entry.Value, &m); err != nil {
		return doneSeqs{}, nil, fmt.Errorf("checkpoint manifest %s (revision %d): %w", manifestKey, entry.Revision, err)
	}
	if m.Format != manifestFormat {
		return doneSeqs{}, nil, fmt.Errorf("checkpoint manifest %s has format %d, this processor reads %d: delete the bucket's keys to rebuild from the stream", manifestKey, m.Format, manifestFormat)
	}
	if m.Regions == nil {
		m.Regions = map[string]regionRef{}
	}
	blobs := make(map[string][]byte, len(m.Regions))
	for code, ref := range m.Regions {
		var buf bytes.Buffer
		buf.Grow(ref.Bytes)
		for n := 0; n < ref.Parts; n++ {
			k := partKey(code, ref.Slot, n)
			e, err := c.kv.Get(ctx, k)
			if err != nil {
				return doneSeqs{}, nil, fmt.Errorf("read checkpoint part %s: %w", k, err)
			}
			buf.Write(e.Value)
		}
		sum := sha256.Sum256(buf.Bytes())
		if buf.Len() != ref.Bytes || hex.EncodeToString(sum[:]) != ref.SHA256 {
			return doneSeqs{}, nil, fmt.Errorf("checkpoint of region %s (slot %s) does not match its manifest: %d bytes, want %d", code, ref.Slot, buf.Len(), ref.Bytes)
		}
		blobs[code] = buf.Bytes()
	}
	c.man, c.rev, c.unsure = m, entry.Revision, nil
	c.erasures, c.floor = m.Erasures, versionFloor{seq: m.Floor, nanos: m.FloorNanos}
	return doneFrom(m.Seq, m.Above), blobs, nil
}

// forgetRegions drops the regions of the loaded manifest, so the next save
// references only the blobs it writes (after a rebuild from the stream).
func (c *checkpointStore) forgetRegions() {
	c.man.Regions = map[string]regionRef{}
	c.cleaned = false // after the next commit, purge every part it does not reference
	c.forgot = true
}

// save writes the blobs of the regions that changed and then the manifest
// covering done. Regions not in blobs keep their previous blob. It returns
// the bytes written.
func (c *checkpointStore) save(ctx context.Context, done doneSeqs, lease uint64, at time.Time, blobs map[string][]byte, commit func() error) (int, error) {
	seq := done.low
	if c.writer == "" {
		c.writer = newWriterID()
	}
	if c.unsure != nil {
		if err := c.settle(ctx); err != nil {
			return 0, fmt.Errorf("write checkpoint at sequence %d: %w", seq, err)
		}
	}
	if lease != 0 && c.man.Lease > lease {
		return 0, fmt.Errorf("write checkpoint at sequence %d: the manifest was written under lease token %d, newer than ours (%d): %w", seq, c.man.Lease, lease, errCheckpointConflict)
	}
	next := manifest{Format: manifestFormat, Seq: seq, Above: done.sorted(), Lease: lease, Written: at.UTC(), Regions: make(map[string]regionRef, len(c.man.Regions)+len(blobs)),
		Erasures: c.erasures, Floor: c.floor.seq, FloorNanos: c.floor.nanos}
	for code, ref := range c.man.Regions {
		next.Regions[code] = ref
	}
	codes := make([]string, 0, len(blobs))
	for code := range blobs {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	c.saves++
	slot := c.writer + "-" + strconv.FormatUint(c.saves, 10)
	written := 0
	for _, code := range codes {
		blob := blobs[code]
		parts := 0
		for off := 0; off < len(blob) || parts == 0; off += partSize {
			end := min(off+partSize, len(blob))
			k := partKey(code, slot, parts)
			if _, err := c.kv.Put(ctx, k, blob[off:end]); err != nil {
				return written, fmt.Errorf("write checkpoint part %s (%d bytes): %w", k, end-off, err)
			}
			written += end - off
			parts++
		}
		sum := sha256.Sum256(blob)
		next.Regions[code] = regionRef{Slot: slot, Parts: parts, Bytes: len(blob), SHA256: hex.EncodeToString(sum[:])}
	}
	data, err := json.Marshal(next)
	if err != nil {
		return written, err
	}
	if commit != nil {
		// The parts written are unreferenced until the manifest names
		// them: refused here, they are garbage purgeOld removes.
		if err := commit(); err != nil {
			return written, err
		}
	}
	mw := &manifestWrite{data: data, next: next, replaced: c.man.Regions, codes: codes, slot: slot}
	var rev uint64
	if c.rev == 0 {
		rev, err = c.kv.Create(ctx, manifestKey, data)
	} else {
		rev, err = c.kv.Update(ctx, manifestKey, data, c.rev)
	}
	if err != nil {
		if errors.Is(err, stream.ErrKeyExists) || errors.Is(err, stream.ErrWrongRevision) {
			return written, fmt.Errorf("write checkpoint manifest at sequence %d: %w", seq, errCheckpointConflict)
		}
		c.unsure = mw
		return written, fmt.Errorf("write checkpoint manifest at sequence %d (whether it was applied is checked before the next): %w", seq, err)
	}
	c.committed(ctx, mw, rev)
	c.forgot = false
	return written + len(data), nil
}

// settle finds out whether the unanswered manifest write c.unsure was
// applied: if the server holds its bytes it was, and the store moves on from
// it; otherwise the key holds what it held before (the next compare-and-set
// goes ahead) or another writer's manifest (it is refused: a conflict). An
// error (the manifest unreadable) leaves the question for the next save.
func (c *checkpointStore) settle(ctx context.Context) error {
	u := c.unsure
	e, err := c.kv.Get(ctx, manifestKey)
	switch {
	case err == nil && bytes.Equal(e.Value, u.data):
		c.unsure = nil
		c.committed(ctx, u, e.Revision)
		if c.forgot {
			// Its regions hold what forgetRegions dropped (the erased):
			// only its revision counts.
			c.man.Regions = map[string]regionRef{}
			c.cleaned = false
		}
	case err == nil || errors.Is(err, stream.ErrKeyNotFound):
		c.unsure = nil
	default:
		return fmt.Errorf("read checkpoint manifest %s after a write left unanswered: %w", manifestKey, err)
	}
	return nil
}

// committed records that mw's manifest is the current one, at revision rev,
// and purges the parts it no longer references. Purge failures only leave
// garbage behind.
func (c *checkpointStore) committed(ctx context.Context, mw *manifestWrite, rev uint64) {
	c.man, c.rev = mw.next, rev
	for _, code := range mw.codes {
		if old, ok := mw.replaced[code]; ok && old.Slot != mw.slot {
			for n := 0; n < old.Parts; n++ {
				_ = c.kv.Purge(ctx, partKey(code, old.Slot, n))
			}
		}
	}
	if c.saves%purgeDeletesEvery == 0 {
		_ = c.kv.PurgeDeletes(ctx)
	}
	if !c.cleaned {
		c.cleaned = true
		// The server's clock: parts are stamped by it too.
		if e, err := c.kv.Get(ctx, manifestKey); err == nil && e.Revision == rev {
			c.purgeOld(ctx, e.Created)
		}
	}
}

// purgeOld removes the parts the manifest does not reference that were
// written before committed (earlier instances' slots; a crash's half-written
// ones), and old delete markers. Failures only leave garbage behind: it
// logs nothing and returns nothing.
func (c *checkpointStore) purgeOld(ctx context.Context, committed time.Time) {
	keep := map[string]bool{}
	for code, ref := range c.man.Regions {
		for n := 0; n < ref.Parts; n++ {
			keep[partKey(code, ref.Slot, n)] = true
		}
	}
	keys, err := c.kv.Keys(ctx, "process.state.>")
	if err != nil {
		return
	}
	var old []string
	for _, k := range keys {
		if keep[k] {
			continue
		}
		// Another instance's slot, or ours from the other letter: keep what
		// was written after the commit (a processor starting meanwhile).
		if e, err := c.kv.Get(ctx, k); err == nil && e.Created.Before(committed) {
			old = append(old, k)
		}
	}
	for _, k := range old {
		_ = c.kv.Purge(ctx, k)
	}
	if len(old) > 0 {
		_ = c.kv.PurgeDeletes(ctx)
	}
}
