package process

import (
	"errors"
	"fmt"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// Replayer is the processor's pure core for `epiwatch replay`: the same
// decoding, per-region state and indicator computation as the live
// Processor, without its consumer, checkpoints or publishing. The caller
// feeds the stored events stream in sequence order with each message's own
// stream sequence and timestamp, so every record it computes equals the one
// the live processor published for the same (region, date, version): Version
// is the highest events-stream sequence a record depends on and ComputedAt
// that event's JetStream timestamp.
//
// Decode and Apply are split so the caller can look at an event's date before
// it changes the state (replay publishes what is pending when the data move
// on to a new day). A Replayer is not safe for concurrent use.
type Replayer struct {
	eng *engine
}

// NewReplayer validates the configuration (only the science keys matter:
// pathogen, serial interval, R window, prior, r_date, bed age, contact
// follow-up) and returns an empty state.
func NewReplayer(cfg Config, regions *schemas.Regions) (*Replayer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	if regions == nil {
		return nil, errors.New("process: regions are required (schemas.DefaultRegions())")
	}
	r, err := newRModel(cfg)
	if err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	eng, err := newEngine(cfg, regions, r)
	if err != nil {
		return nil, fmt.Errorf("process config: %w", err)
	}
	return &Replayer{eng: eng}, nil
}

// Decode decodes and checks one stored event as the live processor does; ts
// is the message's JetStream timestamp (dates later than the day after it are
// rejected). A non-nil error means the live processor dead-letters the event
// too: it can never be applied. Not safe for concurrent use.
func (p *Replayer) Decode(data []byte, ts time.Time) (*schemas.Event, error) {
	return decodeEvent(&p.eng.dec, data, ts)
}

// Apply applies a decoded event stored at stream sequence seq and time ts.
// It returns false for an event_id seen before (nothing changes). An error
// is as the live processor's: an errPermanent (IsPermanent) can never be
// applied, anything else is worth retrying.
func (p *Replayer) Apply(e *schemas.Event, seq uint64, ts time.Time) (bool, error) {
	return p.eng.applyEvent(e, seq, ts.UnixNano())
}

// SetLookup gives the replayer the stored events, so a correction can undo
// the counts of the event it corrects (see StreamLookup).
func (p *Replayer) SetLookup(f func(source, eventID string) (*schemas.Event, uint64, error)) {
	p.eng.lookup = f
}

// Dirty reports whether records wait to be taken with Pending.
func (p *Replayer) Dirty() bool { return p.eng.dirty() }

// Pending appends the records of every (region, day) changed since the last
// MarkPublished, in region then date order (the live processor's publish
// order). Calling it again without MarkPublished returns the same records.
func (p *Replayer) Pending(out []schemas.Indicator) []schemas.Indicator {
	return p.eng.pending(out)
}

// MarkPublished records that everything Pending returned was published.
func (p *Replayer) MarkPublished() { p.eng.markPublished() }

// Last is the newest day with data in any region (0 before any event).
func (p *Replayer) Last() schemas.Date { return p.eng.last }
