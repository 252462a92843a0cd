package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// LevelRecord is the value stored per region in the KV bucket
// schemas.BucketLevels (key: the region code), as JSON:
//
//	{"level": 2, "since": "2021-07-05T00:00:00Z", "last_day": "2021-07-05",
//	 "last_decision_id": "KZ-75:2021-07-05:kz-2020-plan@1"}
//
// plus, between deciding and committing, "pending": the decision being made
// with the level state it leads to. Every write is a compare-and-set on the
// key's revision (Create for the first), so two deciders — replicas, or the
// service and `epiwatch decide --region` — cannot both move a level.
type LevelRecord struct {
	thresholds.LevelState
	// LastDay is the newest data day a decision was made on; a day at or
	// before it is never decided again (the level moves at most once per
	// data day).
	LastDay schemas.Date `json:"last_day"`
	// LastDecisionID is the DecisionID of the last committed decision.
	LastDecisionID string `json:"last_decision_id,omitempty"`
	// Pending is a decision that was claimed but not yet committed: it may
	// or may not be on the decisions stream. Whoever loads the record next
	// completes it before deciding anything else for the region.
	Pending *PendingDecision `json:"pending,omitempty"`
	// Manual is the manual level in force, if any: set by a headquarters,
	// it holds the region's level until it is released or expires, while
	// the rule set's recommendations are still made and recorded.
	Manual *ManualLevel `json:"manual,omitempty"`
}

// ManualLevel is a restriction level set by hand (`epiwatch level set`, or
// POST /v1/levels/<region>), with who set it, why and until when.
type ManualLevel struct {
	Level  int       `json:"level"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Until is the last day the level holds (in decide.timezone, or the data
	// day in data mode); 0 holds until released.
	Until schemas.Date `json:"until,omitempty"`
	// DecisionID is the id of the decision that set it.
	DecisionID string `json:"decision_id"`
}

func (m *ManualLevel) until() string {
	if m.Until == 0 {
		return "until released"
	}
	return "until " + m.Until.String()
}

// PendingDecision is a claimed, uncommitted decision: the full record to
// publish and the level state to commit, so completing it after a crash
// publishes exactly what was decided and moves the level exactly once.
type PendingDecision struct {
	Decision schemas.Decision      `json:"decision"`
	State    thresholds.LevelState `json:"state"`
	// Day is the data day decided on; 0 for a decision of no data day
	// (stale input, a manual level).
	Day schemas.Date `json:"day"`
	// Manual is the manual level in force after the decision (nil: none).
	Manual *ManualLevel `json:"manual,omitempty"`
}

// regionLevel is a cached LevelRecord with the KV revision it was read or
// written at (0: the key does not exist).
type regionLevel struct {
	rec LevelRecord
	rev uint64
}

// errConflict is a compare-and-set failure: another decider wrote the key.
var errConflict = errors.New("level record changed concurrently")

// errCrashed is returned once a test hook simulated a crash.
var errCrashed = errors.New("decider crashed (test hook)")

// maxConflicts bounds the retries of one decision after CAS conflicts.
const maxConflicts = 5

// readLevel reads a region's record from KV.
func (d *Decider) readLevel(ctx context.Context, region string) (*regionLevel, error) {
	e, err := d.kv.Get(ctx, region)
	if errors.Is(err, stream.ErrKeyNotFound) {
		return &regionLevel{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read level of %s from %s: %w", region, schemas.BucketLevels, err)
	}
	var rl regionLevel
	if err := json.Unmarshal(e.Value, &rl.rec); err != nil {
		return nil, fmt.Errorf("level of %s in %s (revision %d) is not valid JSON: %w; fix or delete the key", region, schemas.BucketLevels, e.Revision, err)
	}
	rl.rev = e.Revision
	return &rl, nil
}

// writeLevel stores rec if the key is still at revision rev (Create when rev
// is 0). A concurrent write is reported as errConflict.
func (d *Decider) writeLevel(ctx context.Context, region string, rec LevelRecord, rev uint64) (uint64, error) {
	if err := d.lease.Check(); err != nil {
		return 0, fmt.Errorf("write level of %s: %w", region, err)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return 0, fmt.Errorf("encode level of %s: %w", region, err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = d.kv.Create(ctx, region, b)
	} else {
		nrev, err = d.kv.Update(ctx, region, b, rev)
	}
	if errors.Is(err, stream.ErrKeyExists) || errors.Is(err, stream.ErrWrongRevision) {
		return 0, fmt.Errorf("write level of %s at revision %d: %w", region, rev, errConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("write level of %s to %s: %w", region, schemas.BucketLevels, err)
	}
	return nrev, nil
}

// loadLevel returns the region's committed level record, completing a
// pending decision first (one left by a crash, or by another decider that is
// still working on it: completing it twice is harmless, see complete).
func (d *Decider) loadLevel(ctx context.Context, region string) (*regionLevel, error) {
	for range maxConflicts {
		rl, ok := d.levels[region]
		if !ok {
			var err error
			if rl, err = d.readLevel(ctx, region); err != nil {
				return nil, err
			}
			d.levels[region] = rl
			d.m.setLevel(region, rl.rec.Level)
		}
		if rl.rec.Pending == nil {
			return rl, nil
		}
		if d.hooks.noRecovery {
			// Negative control: forget the claimed decision, as a decider
			// without write-ahead claims would.
			rl.rec.Pending = nil
			return rl, nil
		}
		d.log.Info("completing a pending decision", "region", region, "decision_id", rl.rec.Pending.Decision.DecisionID)
		err := d.complete(ctx, region, rl)
		if errors.Is(err, errConflict) {
			delete(d.levels, region)
			continue
		}
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("level of %s: %d conflicting updates in a row", region, maxConflicts)
}

// claim runs one decision through the protocol
//
//	compute → claim (KV CAS: pending) → publish (Nats-Msg-Id = DecisionID) → commit (KV CAS)
//
// compute sees the committed record and returns the decision, or false when
// there is nothing new to decide (the day was decided already). On a CAS
// conflict the record is re-read and compute runs again. The claim is what
// makes a crash harmless: the next load finds the pending decision and
// completes it — publishing it only if the stream does not have it — instead
// of deciding the day again, so the level moves once per decision.
//
// In full, the region's LevelRecord is the single point of coordination and
// one decision is
//
//  1. compute: evaluate the rule set and thresholds.Next from the committed
//     record;
//  2. claim: write the record with Pending = the full decision and the level
//     state it leads to (compare-and-set on the revision; Create for the
//     first), so two deciders cannot both decide the region;
//  3. publish the decision on epi.decisions.<region> with Nats-Msg-Id =
//     DecisionID, unless the region's newest message there already is it;
//  4. commit: write the new level state, LastDay and LastDecisionID, clearing
//     Pending (compare-and-set).
//
// Whoever loads a record with a pending decision completes steps 3–4 for it
// before anything else. A crash after 2 publishes the claimed decision on
// restart; a crash after 3 finds it on the stream and only commits. Either way
// the level moves once and the stream holds one message per DecisionID.
// Deciding the same day again is a no-op (LastDay), and the same decision
// published twice is dropped by JetStream (Nats-Msg-Id) and by ClickHouse
// (ReplacingMergeTree keyed by decision_id).
func (d *Decider) claim(ctx context.Context, region string, compute func(cur LevelRecord) (PendingDecision, bool)) (schemas.Decision, bool, error) {
	// Once started, a decision runs to its commit even if shutdown begins:
	// cancel + drain leaves no claim behind while NATS is reachable.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.opTimeout)
	defer cancel()
	for range maxConflicts {
		if d.crashed {
			return schemas.Decision{}, false, errCrashed
		}
		rl, err := d.loadLevel(ctx, region)
		if err != nil {
			return schemas.Decision{}, false, err
		}
		p, fresh := compute(rl.rec)
		if !fresh {
			return schemas.Decision{}, false, nil
		}
		intent := rl.rec
		intent.Pending = &p
		rev, err := d.writeLevel(ctx, region, intent, rl.rev)
		if errors.Is(err, errConflict) {
			delete(d.levels, region)
			continue
		}
		if err != nil {
			return schemas.Decision{}, false, err
		}
		claimed := &regionLevel{rec: intent, rev: rev}
		d.levels[region] = claimed
		if h := d.hooks.afterClaim; h != nil {
			if err := h(p.Decision); err != nil {
				d.crashed = true
				return schemas.Decision{}, false, errCrashed
			}
		}
		if err := d.complete(ctx, region, claimed); err != nil {
			if errors.Is(err, errConflict) {
				// Another decider completed our claim (it loaded the record
				// while we were publishing): the decision stands.
				delete(d.levels, region)
				return p.Decision, true, nil
			}
			return schemas.Decision{}, false, err
		}
		return p.Decision, true, nil
	}
	return schemas.Decision{}, false, fmt.Errorf("decide %s: %d conflicting updates in a row", region, maxConflicts)
}

// complete publishes rl's pending decision unless the decisions stream
// already holds it, then commits the level state it leads to.
//
// Idempotency key: the DecisionID. The publish carries it as Nats-Msg-Id
// (JetStream drops a second copy within the duplicate window), and before
// publishing the region's last message on the decisions stream is checked:
// every decision of a region passes through its KV claim, so a published but
// uncommitted decision is always the region's newest message.
func (d *Decider) complete(ctx context.Context, region string, rl *regionLevel) error {
	p := rl.rec.Pending
	id := p.Decision.DecisionID
	have := false
	if !d.hooks.noRecovery {
		var err error
		if have, err = d.published(ctx, region, id); err != nil {
			return err
		}
	}
	if !have {
		data, err := json.Marshal(p.Decision)
		if err != nil {
			return fmt.Errorf("encode decision %s: %w", id, err)
		}
		msgID := id
		if d.hooks.msgID != nil {
			msgID = d.hooks.msgID(id)
		}
		if err := d.lease.Check(); err != nil {
			return fmt.Errorf("publish decision %s: %w", id, err)
		}
		var hdr stream.Header
		if d.lease != nil {
			hdr = stream.Header{schemas.HeaderLeaseToken: {strconv.FormatUint(d.lease.Token(), 10)}}
		}
		if _, err := d.pub.PublishSync(ctx, stream.Msg{Subject: schemas.DecisionSubject(region), ID: msgID, Data: data, Header: hdr}); err != nil {
			return fmt.Errorf("publish decision %s: %w", id, err)
		}
		if h := d.hooks.afterPublish; h != nil {
			if err := h(p.Decision); err != nil {
				d.crashed = true
				return errCrashed
			}
		}
	}
	next := LevelRecord{LevelState: p.State, LastDay: max(rl.rec.LastDay, p.Day), LastDecisionID: id, Manual: p.Manual}
	rev, err := d.writeLevel(ctx, region, next, rl.rev)
	if err != nil {
		return err
	}
	d.levels[region] = &regionLevel{rec: next, rev: rev}
	d.m.committed(p.Decision)
	// A level change is news for the log; a day that keeps the level is
	// one of thousands (every region, every day) and is in the decisions
	// stream and ClickHouse anyway.
	lvl := slog.LevelDebug
	if p.Decision.LevelFrom != p.Decision.LevelTo {
		lvl = slog.LevelInfo
	}
	d.log.Log(ctx, lvl, "decision", "region", region, "date", p.Decision.Date, "decision_id", id, "action", p.Decision.Action,
		"clause", p.Decision.Clause, "level_from", p.Decision.LevelFromName, "level_to", p.Decision.LevelToName, "reason", p.Decision.Reason)
	return nil
}

// published reports whether the region's newest decision on the stream is
// the one with this id.
func (d *Decider) published(ctx context.Context, region, id string) (bool, error) {
	m, err := d.lastMsg(ctx, region)
	if err != nil || m == nil {
		return false, err
	}
	if m.ID == id {
		return true, nil
	}
	var dec schemas.Decision
	if json.Unmarshal(m.Data, &dec) == nil && dec.DecisionID == id {
		return true, nil
	}
	return false, nil
}

// lastDecision returns the region's newest decision on the stream.
func (d *Decider) lastDecision(ctx context.Context, region string) (schemas.Decision, error) {
	m, err := d.lastMsg(ctx, region)
	if err != nil {
		return schemas.Decision{}, err
	}
	if m == nil {
		return schemas.Decision{}, fmt.Errorf("no decision for %s on stream %s", region, schemas.StreamDecisions)
	}
	var dec schemas.Decision
	if err := json.Unmarshal(m.Data, &dec); err != nil {
		return schemas.Decision{}, fmt.Errorf("decision at %s sequence %d: %w", schemas.StreamDecisions, m.Seq, err)
	}
	return dec, nil
}

// lastMsg returns the region's newest message on the decisions stream, or
// nil if it has none.
func (d *Decider) lastMsg(ctx context.Context, region string) (*stream.Msg, error) {
	m, err := d.bus.LastMsg(ctx, schemas.StreamDecisions, schemas.DecisionSubject(region))
	if errors.Is(err, stream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read last decision of %s: %w", region, err)
	}
	return &m, nil
}
