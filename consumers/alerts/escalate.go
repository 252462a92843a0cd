package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// escalateLoop runs escalate every EscalateCheck until ctx ends.
func (a *Alerter) escalateLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.EscalateCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.escalate(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("escalation check failed; will try again", "err", err)
			}
		}
	}
}

// escalate re-sends, once, every webhook alert that is due for escalation:
// its first delivery attempt is at least EscalateAfter old, its webhook has a
// SecondURL, its decision has no acknowledgement (from the endpoint, or an
// active Alertmanager silence matching the alert's labels) and it has not
// been escalated. Several alerters may run this at once: the escalation has
// its own create-if-absent claim, so only one sends.
//
// Headquarters acknowledge a webhook alert with AckHandler; the
// acknowledgement is stored under ackKey(decision_id) and covers every alert
// of the decision. An active Alertmanager silence whose matchers match the
// decision's labels (e.g. region="KZ-75") counts too; it is read from GET
// /api/v2/silences when an alert becomes due and stored as an acknowledgement.
// That check is best effort: if Alertmanager does not answer, the alert
// escalates. The re-send goes to second_url with alert_id + ":escalated" and
// payload escalated: true, is recorded with Escalated set, and happens every
// alerts.escalate_check at most. A failed primary delivery is unacknowledged
// too, so it escalates.
func (a *Alerter) escalate(ctx context.Context) error {
	kv, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	claims, err := kv.All(ctx, "*")
	if err != nil {
		return fmt.Errorf("read alert claims: %w", err)
	}
	now := a.now()
	var due []claim
	for _, e := range claims {
		var c claim
		if json.Unmarshal(e.Value, &c) != nil || c.Escalation {
			continue
		}
		h := a.hooks[c.Channel]
		if h == nil || h.SecondURL == "" {
			continue
		}
		age := now.Sub(c.ClaimedAt)
		if age < a.cfg.EscalateAfter || (a.cfg.MaxDecisionAge > 0 && age > a.cfg.EscalateAfter+a.cfg.MaxDecisionAge) {
			continue // not yet due, or so old it predates escalation being on
		}
		if esc, ok := claims[claimKey(escalationID(c.AlertID))]; ok {
			var ec claim
			if json.Unmarshal(esc.Value, &ec) == nil && ec.final() && ec.Recorded {
				continue // escalated already
			}
		}
		due = append(due, c)
	}
	if len(due) == 0 {
		return nil
	}
	acks, err := kv.All(ctx, "ack.*")
	if err != nil {
		return fmt.Errorf("read acknowledgements: %w", err)
	}
	var silences []amSilence
	silencesRead := false
	var errs []error
	for _, c := range due {
		if _, ok := acks[ackKey(c.DecisionID)]; ok {
			continue
		}
		if a.cfg.AlertmanagerURL != "" {
			if !silencesRead {
				silencesRead = true
				if silences, err = a.silences(ctx); err != nil {
					// Best effort: unable to tell, escalate (the safe side).
					a.log.Warn("could not read Alertmanager silences; escalating without them", "err", err)
				}
			}
			if s := silenced(silences, labels(&c.Decision)); s != nil {
				a.recordAck(ctx, kv, ack{DecisionID: c.DecisionID, By: "alertmanager silence " + s.ID + " by " + s.CreatedBy, At: now.UTC()}, "alertmanager_silence")
				continue
			}
		}
		d := c.Decision
		if err := a.deliver(ctx, kv, &d, c.Kind, target{channel: c.Channel, hook: a.hooks[c.Channel]}, true); err != nil && !errors.Is(err, errBusy) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// recordAck stores an acknowledgement of a decision; a second one changes
// nothing. It reports whether this call stored it.
func (a *Alerter) recordAck(ctx context.Context, kv *stream.KV, k ack, source string) (bool, error) {
	_, err := kv.Create(ctx, ackKey(k.DecisionID), mustJSON(k))
	switch {
	case err == nil:
		a.m.acks.WithLabelValues(source).Inc()
		a.log.Info("alert acknowledged", "decision_id", k.DecisionID, "alert_id", k.AlertID, "by", k.By)
		return true, nil
	case errors.Is(err, stream.ErrKeyExists):
		return false, nil
	}
	a.log.Warn("could not store acknowledgement", "decision_id", k.DecisionID, "err", err)
	return false, fmt.Errorf("store acknowledgement of %s: %w", k.DecisionID, err)
}

// amSilence is the part of an Alertmanager API v2 gettableSilence we read.
type amSilence struct {
	ID     string `json:"id"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
	Matchers  []amMatcher `json:"matchers"`
	CreatedBy string      `json:"createdBy"`
}

type amMatcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual *bool  `json:"isEqual"` // absent means true (API v2 before 0.22)
}

// silences reads Alertmanager's silences (GET /api/v2/silences).
func (a *Alerter) silences(ctx context.Context) ([]amSilence, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	u := strings.TrimRight(a.cfg.AlertmanagerURL, "/") + "/api/v2/silences"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	var out []amSilence
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("decode silences from %s: %w", u, err)
	}
	return out, nil
}

// silenced returns the first active silence whose matchers all match the
// labels — the silence Alertmanager would apply to that alert — or nil.
func silenced(ss []amSilence, lbls map[string]string) *amSilence {
	for i := range ss {
		s := &ss[i]
		if s.Status.State != "active" || len(s.Matchers) == 0 {
			continue
		}
		all := true
		for _, m := range s.Matchers {
			if !m.matches(lbls[m.Name]) {
				all = false
				break
			}
		}
		if all {
			return s
		}
	}
	return nil
}

// matches applies one matcher as Alertmanager does: regexes are anchored; a
// missing label is the empty string.
func (m amMatcher) matches(v string) bool {
	var ok bool
	if m.IsRegex {
		re, err := regexp.Compile("^(?:" + m.Value + ")$")
		if err != nil {
			return false
		}
		ok = re.MatchString(v)
	} else {
		ok = v == m.Value
	}
	if m.IsEqual != nil && !*m.IsEqual {
		return !ok
	}
	return ok
}
