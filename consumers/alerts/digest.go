package alerts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// KindDigest is the kind of the daily digest of signal alarms.
const KindDigest = "digest"

// DigestAlertName is the alertname label of digests in Alertmanager.
const DigestAlertName = "EpiwatchDailyDigest"

// digestSeverity is the digest's severity: informational, it never pages.
const digestSeverity = "info"

// Digest is the content of one region's digest of one data day. It is
// stored in the delivery's claim, so every retry and re-send carries the
// same alarms.
type Digest struct {
	// ID is "digest:<region>:<YYYY-MM-DD>"; alert ids are ID + ":" + channel.
	ID         string       `json:"id"`
	Region     string       `json:"region"`
	RegionName string       `json:"region_name,omitempty"`
	Date       schemas.Date `json:"date"`
	// DecisionID is the decision the trend and P(R > 1) come from: the
	// region's decision for Date, or its latest one; "" without any.
	DecisionID   string       `json:"decision_id,omitempty"`
	DecisionDate schemas.Date `json:"decision_date,omitempty"`
	Trend        string       `json:"trend"`
	RProbAbove1  *float64     `json:"r_prob_above_1"`
	// Alarms are the day's alarms (latest version of each signal), the
	// largest excess first.
	Alarms []DigestAlarm `json:"alarms"`
}

// DigestAlarm is one alarmed signal of a digest.
type DigestAlarm struct {
	Stream      string   `json:"stream"`
	Method      string   `json:"method"`
	Period      string   `json:"period"`
	Version     uint64   `json:"version"`
	Observed    *float64 `json:"observed"`
	UpperBound  *float64 `json:"upper_bound"`
	Excess      *float64 `json:"excess"`
	Provisional bool     `json:"provisional"`
}

func digestID(region string, day schemas.Date) string {
	return "digest:" + region + ":" + day.String()
}

// latestSignals keeps the latest version of each signal (Signal.Key) of
// sigs, given in stream order: the highest Version wins, and of equal
// versions the later message.
func latestSignals(sigs []schemas.Signal) map[string]schemas.Signal {
	out := map[string]schemas.Signal{}
	for _, s := range sigs {
		if cur, ok := out[s.Key()]; ok && cur.Version > s.Version {
			continue
		}
		out[s.Key()] = s
	}
	return out
}

// digestOf builds region's digest of day from its signals (stream order)
// and its decision (nil: none known). It returns nil when the day has no
// alarm: an empty day sends nothing.
//
// Signal alarms (schemas.Signal on EPI_SIGNALS, early warnings that never
// change a level) do not page: once a day per region the alerter sends one
// digest (kind digest) listing the data day's alarms — the signals of that
// region and day whose latest version has Alarm set — largest Excess first (no
// Excess last), with the region's trend and P(R > 1) from its decision for
// that day, or else its latest decision.
//
// Alertmanager gets alertname="EpiwatchDailyDigest" with the labels region,
// region_name, date, kind="digest" and severity="info" (route it to a
// non-paging receiver), the annotations summary, description (the ranked
// alarms), alert_id, digest_id, kind, trend, r_prob_above_1 and dashboard;
// webhooks get a signed DigestPayload (kind "digest"). Digests are neither
// acknowledged nor escalated. Each delivery is claimed like a decision alert,
// but under digestKey, with alert_id "digest:<region>:<YYYY-MM-DD>:<channel>"
// and decision_id (in the record) "digest:<region>:<YYYY-MM-DD>". The claim
// keeps the digest's content, so a takeover after a crash re-sends the same
// bytes with the same idempotency key.
func digestOf(region string, day schemas.Date, sigs []schemas.Signal, dec *schemas.Decision) *Digest {
	var alarms []DigestAlarm
	for _, s := range latestSignals(sigs) {
		if s.Region != region || s.Date != day || !s.Alarm {
			continue
		}
		alarms = append(alarms, DigestAlarm{Stream: s.Stream, Method: s.Method, Period: s.Period, Version: s.Version,
			Observed: s.Observed, UpperBound: s.UpperBound, Excess: s.Excess, Provisional: s.Provisional})
	}
	if len(alarms) == 0 {
		return nil
	}
	slices.SortFunc(alarms, func(x, y DigestAlarm) int {
		switch {
		case x.Excess != nil && y.Excess == nil:
			return -1
		case x.Excess == nil && y.Excess != nil:
			return 1
		case x.Excess != nil && *x.Excess != *y.Excess:
			return cmp.Compare(*y.Excess, *x.Excess)
		}
		return cmp.Or(cmp.Compare(x.Stream, y.Stream), cmp.Compare(x.Method, y.Method))
	})
	g := &Digest{ID: digestID(region, day), Region: region, Date: day, Trend: "unknown", Alarms: alarms}
	if dec != nil {
		g.RegionName, g.DecisionID, g.DecisionDate = dec.RegionName, dec.DecisionID, dec.Date
		g.Trend, g.RProbAbove1 = trend(dec), dec.RProbAbove1
	}
	return g
}

// readSubject calls fn with every message on subject of streamName
// published at or after since, in stream order, and returns when it has
// seen the last one there was when it started.
func (a *Alerter) readSubject(ctx context.Context, streamName, subject string, since time.Time, fn func(data []byte)) error {
	r, err := a.bus.Reader(ctx, streamName, stream.ReadSpec{Filter: []string{subject}, Since: &since, PullAhead: 256})
	if err != nil {
		return fmt.Errorf("read %s: %w", subject, err)
	}
	defer r.Stop()
	if r.Pending() == 0 {
		return nil
	}
	for {
		m, err := r.Next(ctx, 2*time.Second)
		if errors.Is(err, stream.ErrNoMessage) {
			return fmt.Errorf("read %s: no message within 2s although some are pending", subject)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", subject, err)
		}
		fn(m.Data)
		if m.Pending == 0 {
			return nil
		}
	}
}

// signals returns the signals published since on subject, by region, in
// stream order. Records that do not decode are skipped.
func (a *Alerter) signals(ctx context.Context, subject string, since time.Time) (map[string][]schemas.Signal, error) {
	out := map[string][]schemas.Signal{}
	err := a.readSubject(ctx, schemas.StreamSignals, subject, since, func(data []byte) {
		var s schemas.Signal
		if json.Unmarshal(data, &s) == nil && s.Region != "" {
			out[s.Region] = append(out[s.Region], s)
		}
	})
	return out, err
}

// decisionFor returns region's decision for day — the last published — or
// else its latest decision; nil without any.
func (a *Alerter) decisionFor(ctx context.Context, region string, day schemas.Date, since time.Time) (*schemas.Decision, error) {
	var forDay, latest *schemas.Decision
	err := a.readSubject(ctx, schemas.StreamDecisions, schemas.DecisionSubject(region), since, func(data []byte) {
		var d schemas.Decision
		if json.Unmarshal(data, &d) != nil || d.Region != region {
			return
		}
		if d.Date == day {
			forDay = &d
		}
		if latest == nil || d.Date >= latest.Date {
			latest = &d
		}
	})
	if err != nil {
		return nil, err
	}
	if forDay != nil {
		return forDay, nil
	}
	if latest != nil {
		return latest, nil
	}
	m, err := a.bus.LastMsg(ctx, schemas.StreamDecisions, schemas.DecisionSubject(region))
	if errors.Is(err, stream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest decision of %s: %w", region, err)
	}
	var d schemas.Decision
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return nil, nil
	}
	return &d, nil
}

// sendDigest delivers g to every channel of its region, each once (claimed
// under digestKey).
func (a *Alerter) sendDigest(ctx context.Context, g *Digest) error {
	ts := a.targets(g.Region)
	if len(ts) == 0 {
		return nil
	}
	kv, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, len(ts))
	var wg sync.WaitGroup
	for i, t := range ts {
		fresh := claim{AlertID: g.ID + ":" + t.channel, DecisionID: g.ID, Region: g.Region, Channel: t.channel, Kind: KindDigest, Digest: g}
		wg.Go(func() { errs[i] = a.deliverClaim(ctx, kv, fresh, t) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// digestOnDecision sends the digest of d's region and data day (trigger
// "decision").
func (a *Alerter) digestOnDecision(ctx context.Context, d *schemas.Decision) error {
	if len(a.targets(d.Region)) == 0 {
		return nil
	}
	sigs, err := a.signals(ctx, schemas.SignalSubject(d.Region), a.now().Add(-a.cfg.Digest.Lookback))
	if err != nil {
		return err
	}
	g := digestOf(d.Region, d.Date, sigs[d.Region], d)
	if g == nil {
		return nil
	}
	return a.sendDigest(ctx, g)
}

// digestDay sends every region's digest of day (trigger "schedule"): the
// regions with an alarm on day among the signals of the lookback.
func (a *Alerter) digestDay(ctx context.Context, day schemas.Date) error {
	since := a.now().Add(-a.cfg.Digest.Lookback)
	all, err := a.signals(ctx, schemas.SubjectSignals+".>", since)
	if err != nil {
		return err
	}
	var errs []error
	for region, sigs := range all {
		if len(a.targets(region)) == 0 {
			continue
		}
		probe := digestOf(region, day, sigs, nil)
		if probe == nil {
			continue
		}
		dec, err := a.decisionFor(ctx, region, day, since)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := a.sendDigest(ctx, digestOf(region, day, sigs, dec)); err != nil {
			errs = append(errs, fmt.Errorf("digest of %s for %s: %w", region, day, err))
		}
	}
	return errors.Join(errs...)
}

// digestLoop sends, at At in Timezone every day, the digests of the
// previous local day. Started after today's At (a restart, a late start),
// it sends today's at once; the claims keep that to one per region and day.
// A day whose digests could not all be delivered is tried again every
// MaxBackoff until it succeeds (or its claims give up).
//
// alerts.digest.trigger says when: "schedule" (default) runs this loop;
// "decision" sends the digest of data day D when the region's decision for D
// reaches the alerter (after alerts.max_decision_age is applied) — the mode
// for `epiwatch run --simulate`, whose simulated past days never meet a
// wall-clock schedule; signals of D published after that decision are then not
// in it. Either way the digest is built by reading EPI_SIGNALS (and, on
// schedule, EPI_DECISIONS) with an ordered consumer from
// alerts.digest.lookback before now, so nothing is kept in memory and a
// restart loses nothing.
func (a *Alerter) digestLoop(ctx context.Context) {
	loc, _ := time.LoadLocation(a.cfg.Digest.Timezone)
	at, _ := parseClock(a.cfg.Digest.At)
	due := func(now time.Time) (schemas.Date, time.Time) {
		l := now.In(loc)
		y, m, d := l.Date()
		fire := time.Date(y, m, d, 0, 0, 0, 0, loc).Add(at)
		if l.Before(fire) {
			fire = fire.AddDate(0, 0, -1)
		}
		return schemas.DateOf(fire).AddDays(-1), fire
	}
	var last schemas.Date
	open := map[schemas.Date]bool{}
	for {
		day, _ := due(a.now())
		if day != last {
			last, open[day] = day, true
		}
		for d := range open {
			if err := a.digestDay(ctx, d); err != nil {
				if ctx.Err() != nil {
					return
				}
				a.log.Warn("daily digest not delivered everywhere; will try again", "date", d, "err", err)
				continue
			}
			delete(open, d)
		}
		wait := time.Minute
		if len(open) > 0 {
			wait = a.cfg.MaxBackoff
		}
		_, fire := due(a.now())
		if next := fire.AddDate(0, 0, 1).Sub(a.now()); next > 0 && next < wait {
			wait = next
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func digestTitle(g *Digest) string {
	if g.RegionName == "" {
		return g.Region
	}
	return g.RegionName + " (" + g.Region + ")"
}

func digestSummary(g *Digest) string {
	n := "alarms"
	if len(g.Alarms) == 1 {
		n = "alarm"
	}
	return fmt.Sprintf("%s: daily digest for %s — %d signal %s; trend %s, P(R > 1) = %s",
		digestTitle(g), g.Date, len(g.Alarms), n, g.Trend, num(g.RProbAbove1, "%.2f"))
}

func digestDescription(g *Digest, dashboard string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Signal alarms in %s on %s, largest excess first:", digestTitle(g), g.Date)
	for i, s := range g.Alarms {
		fmt.Fprintf(&b, "\n%d. %s by %s (%s): observed %s above the bound %s, excess %s", i+1, s.Stream, s.Method, s.Period,
			num(s.Observed, "%.0f"), num(s.UpperBound, "%.2f"), num(s.Excess, "%.2f"))
		if s.Provisional {
			b.WriteString(", provisional")
		}
	}
	fmt.Fprintf(&b, "\nTrend: %s; P(R > 1) = %s", g.Trend, num(g.RProbAbove1, "%.2f"))
	if g.DecisionID != "" && g.DecisionDate != g.Date {
		fmt.Fprintf(&b, " (from the decision for %s)", g.DecisionDate)
	}
	b.WriteString(". Early warnings: they do not change the restriction level.")
	if dashboard != "" {
		fmt.Fprintf(&b, "\nDashboard: %s", dashboard)
	}
	return b.String()
}

// DigestPayload is the JSON body of a digest POSTed to a headquarters
// webhook (kind "digest"). Like WebhookPayload it is signed, and every retry
// and re-send of one digest is byte-identical. Digests are not escalated and
// carry no acknowledgement.
type DigestPayload struct {
	IdempotencyKey string       `json:"idempotency_key"`
	AlertID        string       `json:"alert_id"`
	DigestID       string       `json:"digest_id"`
	Kind           string       `json:"kind"`
	Severity       string       `json:"severity"`
	Summary        string       `json:"summary"`
	Description    string       `json:"description"`
	Region         string       `json:"region"`
	RegionName     string       `json:"region_name"`
	Date           schemas.Date `json:"date"`
	// DecisionID and DecisionDate name the decision Trend and RProbAbove1
	// come from (the day's, or the region's latest).
	DecisionID   string        `json:"decision_id,omitempty"`
	DecisionDate schemas.Date  `json:"decision_date,omitempty"`
	Trend        string        `json:"trend"`
	RProbAbove1  *float64      `json:"r_prob_above_1"`
	Alarms       []DigestAlarm `json:"alarms"`
	DashboardURL string        `json:"dashboard_url,omitempty"`
}

// digestRequest builds the HTTP request of one digest delivery.
func (a *Alerter) digestRequest(g *Digest, id string, t target) (request, error) {
	link := dashboardLink(a.cfg.DashboardURL, g.Region)
	if t.hook == nil {
		now := a.now().UTC()
		al := amAlert{
			Labels: map[string]string{
				"alertname": DigestAlertName, "region": g.Region, "region_name": g.RegionName,
				"date": g.Date.String(), "kind": KindDigest, "severity": digestSeverity,
			},
			Annotations: map[string]string{
				"summary": digestSummary(g), "description": digestDescription(g, link), "alert_id": id,
				"digest_id": g.ID, "kind": KindDigest, "trend": g.Trend, "r_prob_above_1": num(g.RProbAbove1, "%.2f"),
			},
			StartsAt: now, EndsAt: now.Add(a.cfg.ResolveAfter), GeneratorURL: link,
		}
		if link != "" {
			al.Annotations["dashboard"] = link
		}
		body, err := json.Marshal([]amAlert{al})
		if err != nil {
			return request{}, err
		}
		return request{url: strings.TrimRight(a.cfg.AlertmanagerURL, "/") + "/api/v2/alerts", body: body}, nil
	}
	h := t.hook
	body, err := json.Marshal(DigestPayload{
		IdempotencyKey: id, AlertID: id, DigestID: g.ID, Kind: KindDigest, Severity: digestSeverity,
		Summary: digestSummary(g), Description: digestDescription(g, link),
		Region: g.Region, RegionName: g.RegionName, Date: g.Date, DecisionID: g.DecisionID, DecisionDate: g.DecisionDate,
		Trend: g.Trend, RProbAbove1: g.RProbAbove1, Alarms: g.Alarms, DashboardURL: link,
	})
	if err != nil {
		return request{}, err
	}
	return request{url: h.URL, body: body, sign: func(hd http.Header, now time.Time) {
		ts := strconv.FormatInt(now.Unix(), 10)
		hd.Set(HeaderTimestamp, ts)
		hd.Set(HeaderSignature, Sign(h.secret, ts, body))
		hd.Set(HeaderIdempotencyKey, id)
	}}, nil
}
