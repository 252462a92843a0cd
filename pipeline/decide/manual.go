package decide

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/thresholds"
	"github.com/epiwatch/epiwatch/schemas"
)

// ClauseManual is the clause of decisions that set or release a manual
// level.
const ClauseManual = "manual level"

// ManualRequest sets a region's restriction level by hand.
type ManualRequest struct {
	Region string
	Level  int    // 1-based
	By     string // who: a token's name, or the operator named on the command line
	Reason string // why, for the record: required
	// Until is the last day the level holds; 0 means decide.manual_days
	// from today (and with manual_days 0, until released).
	Until schemas.Date
}

// ErrBadRequest marks a manual level request that cannot be carried out as
// asked (unknown region, level out of range, no reason, nothing to
// release): the caller's mistake, answered 400 over HTTP and exit 2 on the
// command line.
var ErrBadRequest = errors.New("bad manual level request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// open opens the levels bucket without reading the indicator window: what
// setting a manual level needs (the `epiwatch level` command has no use for
// the history). Callers hold mu.
func (d *Decider) open(ctx context.Context) error {
	if d.kv != nil {
		return nil
	}
	kv, err := d.bus.KV(ctx, schemas.BucketLevels)
	if err != nil {
		return err
	}
	d.kv = kv
	return nil
}

// manualNow is the time a manual change takes effect on the level clock:
// today in decide.timezone (schedule mode), or the region's newest data day
// in data mode (where the clock counts data days); and the day it is
// recorded on.
func (d *Decider) manualNow(region string) (time.Time, schemas.Date) {
	today := d.today()
	if d.cfg.Mode == ModeData {
		if n := d.hist.newest(region); n != 0 {
			return n.Time(), n
		}
	}
	return today.Time(), today
}

// SetManual sets region's level by hand. The level holds — the rule set's
// recommendations are still made each day and recorded beside it
// (Decision.RuleLevelTo) — until req.Until, or until ReleaseManual. The
// change is a decision like any other (origin manual, who, why, until when),
// made through the same claim protocol, so it lands in the decisions stream
// and ClickHouse exactly once and a running decider picks it up at its next
// decision (its compare-and-set sees the new revision).
func (d *Decider) SetManual(ctx context.Context, req ManualRequest) (schemas.Decision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(ctx); err != nil {
		return schemas.Decision{}, err
	}
	lc := d.levelsFor(req.Region)
	switch {
	case !d.regions.Known(req.Region):
		return schemas.Decision{}, badRequest("unknown region %q (an ISO 3166-2 code from the region reference, e.g. KZ-75)", req.Region)
	case req.Level < 1 || req.Level > len(lc.Names):
		return schemas.Decision{}, badRequest("level %d is not one of 1..%d (%s)", req.Level, len(lc.Names), strings.Join(lc.Names, ", "))
	case strings.TrimSpace(req.Reason) == "":
		return schemas.Decision{}, badRequest("a reason is required: it is recorded with the level for the regional headquarters and the audit")
	case strings.TrimSpace(req.By) == "":
		return schemas.Decision{}, badRequest("who sets the level is required")
	}
	now, day := d.manualNow(req.Region)
	until := req.Until
	if until == 0 && d.cfg.ManualDays > 0 {
		until = day.AddDays(d.cfg.ManualDays - 1)
	}
	if until != 0 && until < day {
		return schemas.Decision{}, badRequest("until %s is before today (%s)", until, day)
	}
	at := d.clock().UTC()
	id := fmt.Sprintf("%s:manual:%s", req.Region, at.Format("20060102T150405.000000000Z"))
	dec, _, err := d.claim(ctx, req.Region, func(cur LevelRecord) (PendingDecision, bool) {
		from := currentLevel(cur.LevelState, lc)
		dec := d.baseDecision(req.Region, day, id)
		dec.Clause, dec.Origin, dec.SetBy, dec.ManualUntil = ClauseManual, schemas.OriginManual, req.By, until
		m := &ManualLevel{Level: req.Level, By: req.By, Reason: req.Reason, At: at, Until: until, DecisionID: id}
		action := thresholds.Keep
		state := thresholds.LevelState{Level: req.Level, Since: now}
		switch {
		case req.Level > from:
			action, state.LastStrengthen = thresholds.Strengthen, now
		case req.Level < from:
			action = thresholds.Ease
		default:
			state = cur.LevelState
			if state.Level == 0 {
				state = thresholds.LevelState{Level: req.Level, Since: now}
			}
		}
		dec.Action, dec.RuleLevelTo = string(action), from
		dec.LevelFrom, dec.LevelTo, dec.LevelFromName, dec.LevelToName = from, req.Level, lc.Name(from), lc.Name(req.Level)
		dec.Reason = fmt.Sprintf("manual level %s set by %s: %s; it holds %s, the rule set's recommendations are recorded beside it",
			lc.Name(req.Level), req.By, req.Reason, m.until())
		if cur.Manual != nil {
			dec.Reason += fmt.Sprintf(" (replaces the manual level %s set by %s)", lc.Name(cur.Manual.Level), cur.Manual.By)
		}
		return PendingDecision{Decision: dec, State: state, Manual: m}, true
	})
	return dec, err
}

// ReleaseManual ends region's manual level now: the level stays where it is
// and the rule set moves it from there, one step at a time with its pauses
// (a release never jumps back to where the rules would have been).
func (d *Decider) ReleaseManual(ctx context.Context, region, by, reason string) (schemas.Decision, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(ctx); err != nil {
		return schemas.Decision{}, err
	}
	if strings.TrimSpace(by) == "" || strings.TrimSpace(reason) == "" {
		return schemas.Decision{}, badRequest("who releases the level and why are required")
	}
	lc := d.levelsFor(region)
	_, day := d.manualNow(region)
	at := d.clock().UTC()
	id := fmt.Sprintf("%s:release:%s", region, at.Format("20060102T150405.000000000Z"))
	var none bool
	dec, _, err := d.claim(ctx, region, func(cur LevelRecord) (PendingDecision, bool) {
		if cur.Manual == nil {
			none = true
			return PendingDecision{}, false
		}
		dec := d.baseDecision(region, day, id)
		dec.Clause, dec.Origin, dec.SetBy, dec.Action = ClauseManual, schemas.OriginManual, by, string(thresholds.Keep)
		dec.LevelFrom, dec.LevelTo, dec.RuleLevelTo = cur.Level, cur.Level, cur.Level
		dec.LevelFromName, dec.LevelToName = lc.Name(cur.Level), lc.Name(cur.Level)
		dec.Reason = fmt.Sprintf("manual level %s (set by %s) released by %s: %s; the rule set decides again from %s",
			lc.Name(cur.Manual.Level), cur.Manual.By, by, reason, lc.Name(cur.Level))
		return PendingDecision{Decision: dec, State: cur.LevelState}, true
	})
	if err == nil && none {
		return schemas.Decision{}, badRequest("%s has no manual level to release", region)
	}
	return dec, err
}

// Level returns region's committed level record (zero if none).
func (d *Decider) Level(ctx context.Context, region string) (LevelRecord, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.open(ctx); err != nil {
		return LevelRecord{}, err
	}
	rl, err := d.readLevel(ctx, region)
	if err != nil {
		return LevelRecord{}, err
	}
	return rl.rec, nil
}

// LevelAuthorizer decides who may change a region's level over HTTP
// (ingest.Tokens implements it with tokens that have levels: true). It
// returns who asks, recorded with the level, or an HTTP status and why.
type LevelAuthorizer interface {
	AuthorizeLevel(r *http.Request, region string) (who string, status int, err error)
}

// levelBody is the JSON a POST /v1/levels/<region> carries.
type levelBody struct {
	Level  int    `json:"level"`
	Reason string `json:"reason"`
	Until  string `json:"until,omitempty"` // YYYY-MM-DD, the last day it holds
}

// LevelHandler serves the manual-level API for headquarters:
//
//	GET    /v1/levels/<region>            the region's level and any manual level
//	POST   /v1/levels/<region>            {"level": 3, "reason": "…", "until": "2026-12-20"}
//	DELETE /v1/levels/<region>?reason=…   release the manual level
//
// Every call needs a bearer token that auth accepts for the region; without
// an authorizer every call is refused (there is no anonymous way to change
// a level, not even on loopback).
func (d *Decider) LevelHandler(auth LevelAuthorizer) http.Handler {
	mux := http.NewServeMux()
	who := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		region := r.PathValue("region")
		if auth == nil {
			writeJSONError(w, http.StatusUnauthorized, "level changes need a bearer token with levels: true (ingest.tokens); none is configured")
			return "", false
		}
		by, status, err := auth.AuthorizeLevel(r, region)
		if err != nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="epiwatch"`)
			}
			writeJSONError(w, status, err.Error())
			return "", false
		}
		return by, true
	}
	answer := func(w http.ResponseWriter, v any, err error) {
		switch {
		case errors.Is(err, ErrBadRequest):
			writeJSONError(w, http.StatusBadRequest, err.Error())
		case err != nil:
			writeJSONError(w, http.StatusServiceUnavailable, err.Error())
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	mux.HandleFunc("GET /v1/levels/{region}", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := who(w, r); !ok {
			return
		}
		rec, err := d.Level(r.Context(), r.PathValue("region"))
		rec.Pending = nil
		answer(w, rec, err)
	})
	mux.HandleFunc("POST /v1/levels/{region}", func(w http.ResponseWriter, r *http.Request) {
		by, ok := who(w, r)
		if !ok {
			return
		}
		var b levelBody
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&b); err != nil {
			writeJSONError(w, http.StatusBadRequest, "body: want {\"level\": N, \"reason\": \"…\", \"until\": \"YYYY-MM-DD\"}: "+err.Error())
			return
		}
		req := ManualRequest{Region: r.PathValue("region"), Level: b.Level, By: by, Reason: b.Reason}
		if b.Until != "" {
			u, err := schemas.ParseDate(b.Until)
			if err != nil {
				writeJSONError(w, http.StatusBadRequest, "until: "+err.Error())
				return
			}
			req.Until = u
		}
		out, err := d.SetManual(r.Context(), req)
		answer(w, out, err)
	})
	mux.HandleFunc("DELETE /v1/levels/{region}", func(w http.ResponseWriter, r *http.Request) {
		by, ok := who(w, r)
		if !ok {
			return
		}
		out, err := d.ReleaseManual(r.Context(), r.PathValue("region"), by, r.URL.Query().Get("reason"))
		answer(w, out, err)
	})
	return mux
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"error":` + strconv.Quote(msg) + "}\n"))
}
