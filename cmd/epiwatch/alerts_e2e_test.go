package main

// End to end from simulated events to the people alerted: the simulator
// drives one region through a surge and its decline into `epiwatch run`
// (embedded NATS, real ClickHouse), the decider moves the region's level, and
// the alerter tells a real Alertmanager and the region's signed webhook. The
// run is stopped and started again between the surge and the decline.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/consumers/alerts"
	"github.com/epiwatch/epiwatch/internal/testkit/alerttest"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
	"github.com/epiwatch/epiwatch/internal/tools/simulate"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

const (
	alRegion     = "KZ-75" // Almaty, driven past the thresholds
	alOther      = "KZ-71" // Astana: has a webhook, is not simulated
	alEaseDays   = 7       // decide.levels.min_days_before_ease
	alSecret     = "e2e-almaty-webhook-secret-0123456789"
	alHook       = "hq-almaty"
	alSimDays    = 75
	alSurgeDays  = 28 // R 1.6 on days 0..27, then 0.6
	alRestartDay = 38 // days 0..37 are sent before the restart, the rest after
)

// alRequest is one HTTP request an endpoint of the test received.
type alRequest struct {
	header http.Header
	body   []byte
	err    error // what check found wrong with it (answered 401)
}

// alEndpoint records every request; check, if set, vets each one (a
// failure is answered 401, which the alerter treats as permanent).
type alEndpoint struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []alRequest
}

func newAlEndpoint(t *testing.T, check func(h http.Header, body []byte) error) *alEndpoint {
	e := &alEndpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var err error
		if check != nil {
			err = check(r.Header, body)
		}
		e.mu.Lock()
		e.reqs = append(e.reqs, alRequest{header: r.Header.Clone(), body: body, err: err})
		e.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *alEndpoint) all() []alRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]alRequest(nil), e.reqs...)
}

// amProxy stands between the alerter and Alertmanager and records what the
// alerter posts to /api/v2/alerts (Alertmanager itself merges re-posts of an
// alert, so only here would a re-send show).
type amProxy struct {
	*httptest.Server
	mu    sync.Mutex
	posts [][]byte // bodies Alertmanager answered 2xx
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func newAMProxy(t *testing.T, am string) *amProxy {
	u, err := url.Parse(am)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &amProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(sw, r)
		if r.Method == http.MethodPost && r.URL.Path == "/api/v2/alerts" && sw.status < 300 {
			p.mu.Lock()
			p.posts = append(p.posts, body)
			p.mu.Unlock()
		}
	}))
	t.Cleanup(p.Close)
	return p
}

// alertIDs returns the alert_id annotation of every alert posted, in order.
func (p *amProxy) alertIDs(t *testing.T) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for _, b := range p.posts {
		var as []struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(b, &as); err != nil {
			t.Fatalf("alert posted to Alertmanager is not a JSON list: %v\n%s", err, b)
		}
		for _, a := range as {
			ids = append(ids, a.Annotations["alert_id"])
		}
	}
	return ids
}

// startAlertmanagerProc runs the real Alertmanager configured from
// testdata/alerts/alertmanager.yml.tmpl and returns its base URL.
func startAlertmanagerProc(t *testing.T, region, regionURL, defaultURL string) string {
	t.Helper()
	return alerttest.Start(t, alerttest.Render(t, "testdata/alerts/alertmanager.yml.tmpl",
		map[string]string{"Region": region, "RegionURL": regionURL, "DefaultURL": defaultURL}))
}

// startAlertsPipeline writes the configuration of `epiwatch run` with the
// alerter pointed at alertmanagerURL and the webhooks, and starts it.
func startAlertsPipeline(t *testing.T, alertmanagerURL, hookURL, otherURL string) *pipeline {
	t.Helper()
	return startPipeline(t, fmt.Sprintf(`decide:
  mode: data
  levels:
    min_days_before_ease: %d
alerts:
  alertmanager_url: %s
  timeout: 5s
  backoff: 100ms
  max_backoff: 1s
  escalate_after: 0s
  webhooks:
    - name: %s
      url: %s
      secret: %s
      regions: [%s]
    - name: hq-astana
      url: %s
      secret: another-secret
      regions: [%s]
`, alEaseDays, alertmanagerURL, alHook, hookURL, alSecret, alRegion, otherURL, alOther))
}

// eventually polls cond until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alDecision is a row of the decisions table.
type alDecision struct {
	id, action, reason string
	date               schemas.Date
	from, to           int
}

// alerted says whether the alerter alerts on d (alerts.kindOf): every level
// change and every strengthen recommendation.
func (d alDecision) alerted() bool { return d.from != d.to || d.action == "strengthen" }

func (d alDecision) kind() string {
	if d.from != d.to {
		return alerts.KindLevelChange
	}
	return alerts.KindStrengthen
}

// amKey identifies an Alertmanager alert of the region: the other labels
// follow from the level and the action.
func (d alDecision) amKey() string { return fmt.Sprintf("level=%d action=%s", d.to, d.action) }

func regionDecisions(t *testing.T, db *chtest.DB) []alDecision {
	t.Helper()
	rows, err := db.Conn.Query(context.Background(), "SELECT decision_id, date, action, reason, level_from, level_to FROM `"+
		db.Name+"`.decisions WHERE region = '"+alRegion+"' ORDER BY date, decision_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []alDecision
	for rows.Next() {
		var d alDecision
		var day time.Time
		var from, to uint8
		if err := rows.Scan(&d.id, &day, &d.action, &d.reason, &from, &to); err != nil {
			t.Fatal(err)
		}
		d.date, d.from, d.to = schemas.DateOf(day), int(from), int(to)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitDecided waits until ClickHouse holds a decision of the region for
// every data day from first (or earlier) to last — rows can land out of
// order — and returns the decisions.
func waitDecided(t *testing.T, db *chtest.DB, first, last schemas.Date) []alDecision {
	t.Helper()
	var ds []alDecision
	eventually(t, 45*time.Second, fmt.Sprintf("decisions of %s from %s to %s in ClickHouse", alRegion, first, last), func() bool {
		ds = regionDecisions(t, db)
		return len(ds) > 0 && ds[0].date <= first && ds[len(ds)-1].date >= last && len(ds) == int(ds[len(ds)-1].date-ds[0].date)+1
	})
	return ds
}

// expectedAlerts are the alert ids of the decisions' alerts on one channel.
func expectedAlerts(ds []alDecision, channel string) map[string]alDecision {
	m := map[string]alDecision{}
	for _, d := range ds {
		if d.alerted() {
			m[d.id+":"+channel] = d
		}
	}
	return m
}

// webhookIDs returns the idempotency keys of the verified webhook
// deliveries, in order.
func webhookIDs(t *testing.T, hook *alEndpoint) []string {
	t.Helper()
	var ids []string
	for _, r := range hook.all() {
		if r.err != nil {
			continue
		}
		var p alerts.WebhookPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatalf("webhook body is not a payload: %v\n%s", err, r.body)
		}
		ids = append(ids, p.IdempotencyKey)
	}
	return ids
}

// checkExactlyOnce reports ids outside want and ids of want not seen
// exactly once.
func checkExactlyOnce(t *testing.T, where string, got []string, want map[string]alDecision) {
	t.Helper()
	n := map[string]int{}
	for _, id := range got {
		n[id]++
	}
	for id, c := range n {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: unexpected alert %s (%d times)", where, id, c)
		} else if c != 1 {
			t.Errorf("%s: alert %s delivered %d times, want exactly once", where, id, c)
		}
	}
	for id := range want {
		if n[id] == 0 {
			t.Errorf("%s: alert %s never delivered", where, id)
		}
	}
}

// TestAlertsEndToEnd: the simulator drives Almaty past the thresholds, its
// level rises, and each alert reaches Alertmanager's receiver for the region
// and the region's direct webhook exactly once; when R falls the level eases
// only after min_days_before_ease days at a level; a restart of `epiwatch
// run` between the surge and the decline re-sends nothing.
func TestAlertsEndToEnd(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	ctx := context.Background()

	// Receivers: Alertmanager's for the region and its default route, the
	// region's headquarters webhook (verifying every signature) and another
	// region's webhook, which must hear nothing.
	amRegion, amDefault := newAlEndpoint(t, nil), newAlEndpoint(t, nil)
	am := startAlertmanagerProc(t, alRegion, amRegion.URL, amDefault.URL)
	proxy := newAMProxy(t, am)
	hook := newAlEndpoint(t, func(h http.Header, body []byte) error {
		if err := alerts.Verify([]byte(alSecret), h.Get(alerts.HeaderTimestamp), h.Get(alerts.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			return err
		}
		var p alerts.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			return err
		}
		if k := h.Get(alerts.HeaderIdempotencyKey); k != p.IdempotencyKey || p.AlertID != k {
			return fmt.Errorf("Idempotency-Key %q, payload idempotency_key %q, alert_id %q: want all equal", k, p.IdempotencyKey, p.AlertID)
		}
		return nil
	})
	otherHook := newAlEndpoint(t, nil)
	p := startAlertsPipeline(t, proxy.URL, hook.URL, otherHook.URL)
	t.Logf("Alertmanager and epiwatch run ready after %s (db %s)", time.Since(begin).Round(time.Millisecond), p.db.Name)

	// One region: R 1.6 fills the infectious beds, then R 0.6 empties them.
	// No reporting delays, so each simulated day is complete when sent. The
	// period ends yesterday (the ingest API refuses future dates).
	sc := simulate.DefaultConfig()
	sc.Regions = []string{alRegion}
	sc.Days = alSimDays
	sc.Start = schemas.DateOf(time.Now().UTC()).AddDays(-sc.Days)
	sc.Scale = 0.1
	sc.SeedCases = 30
	sc.Delays = false
	sc.Schedules = map[string]simulate.RSchedule{alRegion: {{FromDay: 0, R: 1.6}, {FromDay: alSurgeDays, R: 0.6}}}
	sim, err := simulate.New(sc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var days [][]schemas.Event
	if err := sim.Run(ctx, func(_ schemas.Date, evs []schemas.Event) error {
		days = append(days, evs)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	send := func(from, to int) {
		t.Helper()
		var evs []schemas.Event
		for _, d := range days[from:to] {
			evs = append(evs, d...)
		}
		s := &simulate.Sender{URL: "http://" + p.httpAddr + "/v1/events", Batch: 1000, MaxWait: 30 * time.Second}
		res, err := s.Send(ctx, evs)
		if err != nil {
			t.Fatalf("send days %d..%d: %v", from, to-1, err)
		}
		if res.Rejected > 0 || res.Accepted != len(evs) {
			t.Fatalf("send days %d..%d: %d events, %d accepted, %d duplicates, %d rejected: %v",
				from, to-1, len(evs), res.Accepted, res.Duplicates, res.Rejected, res.Rejections)
		}
	}
	hookChannel := "webhook:" + alHook

	// The surge. Day D is decided once day D+1's indicators exist.
	send(0, alRestartDay)
	before := waitDecided(t, p.db, sc.Start, sc.Start.AddDays(alRestartDay-2))
	wantHookBefore := expectedAlerts(before, hookChannel)
	wantAMBefore := expectedAlerts(before, alerts.ChannelAlertmanager)
	rose := false
	for _, d := range before {
		rose = rose || d.to > d.from
	}
	if !rose {
		t.Fatalf("no level rose during the surge (days up to %s); decisions:\n%s", before[len(before)-1].date, formatDecisions(before))
	}
	eventually(t, 30*time.Second, "the surge's alerts at the webhook and Alertmanager", func() bool {
		return len(webhookIDs(t, hook)) >= len(wantHookBefore) && len(proxy.alertIDs(t)) >= len(wantAMBefore)
	})
	t.Logf("surge sent, decided and alerted after %s: %d decisions, %d alerts per channel",
		time.Since(begin).Round(time.Millisecond), len(before), len(wantHookBefore))

	// Restart. The alerter's durable consumer is deleted first, so the
	// restarted alerter is handed every decision again from the first (as a
	// lost consumer or a fresh replica would be): only the claims stand
	// between it and a second page.
	nc, js, err := stream.Connect(p.natsURL, "alerts-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, schemas.StreamDecisions, schemas.ConsumerAlerts); err != nil {
		t.Fatalf("delete the alerts consumer: %v", err)
	}
	nc.Close()
	if code := p.stop(); code != 0 {
		t.Fatalf("epiwatch run exited with %d on shutdown", code)
	}
	hookBefore, amBefore := webhookIDs(t, hook), proxy.alertIDs(t)
	checkExactlyOnce(t, "webhook before the restart", hookBefore, wantHookBefore)
	checkExactlyOnce(t, "Alertmanager API before the restart", amBefore, wantAMBefore)
	p.run(t)

	// The decline.
	send(alRestartDay, sc.Days)
	all := waitDecided(t, p.db, sc.Start, sim.End().AddDays(-1))
	wantHook := expectedAlerts(all, hookChannel)
	wantAM := expectedAlerts(all, alerts.ChannelAlertmanager)
	eventually(t, 30*time.Second, "every alert at the webhook and Alertmanager", func() bool {
		return len(webhookIDs(t, hook)) >= len(wantHook) && len(proxy.alertIDs(t)) >= len(wantAM)
	})
	amKeys := map[string]bool{}
	for _, d := range wantAM {
		amKeys[d.amKey()] = true
	}
	// notified counts the notifications per alert (level and action); check
	// also vets receiver and labels.
	notified := func(check bool) map[string]int {
		n := map[string]int{}
		for _, r := range amRegion.all() {
			var note struct {
				Receiver string `json:"receiver"`
				Alerts   []struct {
					Labels map[string]string `json:"labels"`
				} `json:"alerts"`
			}
			if err := json.Unmarshal(r.body, &note); err != nil {
				t.Fatalf("Alertmanager notification: %v\n%s", err, r.body)
			}
			for _, a := range note.Alerts {
				if check && (a.Labels["alertname"] != alerts.AlertName || a.Labels["region"] != alRegion || note.Receiver != "hq-region") {
					t.Errorf("notification to %s of alert %v, want %s alerts of %s only", note.Receiver, a.Labels, alerts.AlertName, alRegion)
				}
				n[fmt.Sprintf("level=%s action=%s", a.Labels["level"], a.Labels["action"])]++
			}
		}
		return n
	}
	eventually(t, 15*time.Second, "Alertmanager's notifications of every alert", func() bool { return len(notified(false)) >= len(amKeys) })
	// Anything sent twice would arrive within this: the alerter is idle and
	// Alertmanager flushes a changed group every second.
	time.Sleep(2500 * time.Millisecond)
	// The restarted alerter did go through every decision again.
	nc, js, err = stream.Connect(p.natsURL, "alerts-e2e")
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, schemas.StreamDecisions, schemas.ConsumerAlerts)
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nc.Close()
	if ci.Delivered.Consumer < uint64(len(all)) || ci.NumPending != 0 || ci.NumAckPending != 0 {
		t.Errorf("restarted alerter: %d deliveries (%d pending, %d unacknowledged), want every one of the %d decisions delivered and settled",
			ci.Delivered.Consumer, ci.NumPending, ci.NumAckPending, len(all))
	}
	if code := p.stop(); code != 0 {
		t.Errorf("epiwatch run exited with %d on shutdown", code)
	}

	// Each alert exactly once on each channel, signed, none re-sent after
	// the restart, none to the other region.
	hookIDs, amIDs := webhookIDs(t, hook), proxy.alertIDs(t)
	checkExactlyOnce(t, "webhook", hookIDs, wantHook)
	checkExactlyOnce(t, "Alertmanager API", amIDs, wantAM)
	for _, r := range hook.all() {
		if r.err != nil {
			t.Errorf("webhook request refused: %v", r.err)
		}
	}
	for _, r := range hook.all() {
		var pl alerts.WebhookPayload
		if json.Unmarshal(r.body, &pl) != nil {
			continue
		}
		d, ok := wantHook[pl.IdempotencyKey]
		if ok && (pl.Region != alRegion || pl.DecisionID != d.id || pl.Kind != d.kind() || pl.LevelFrom != d.from || pl.LevelTo != d.to || pl.Action != d.action) {
			t.Errorf("webhook payload %s: region %s decision %s kind %s level %d→%d action %s, want %s %s %s %d→%d %s",
				pl.IdempotencyKey, pl.Region, pl.DecisionID, pl.Kind, pl.LevelFrom, pl.LevelTo, pl.Action, alRegion, d.id, d.kind(), d.from, d.to, d.action)
		}
	}
	for _, split := range []struct {
		name          string
		before, after []string
	}{{"webhook", hookBefore, hookIDs[len(hookBefore):]}, {"Alertmanager API", amBefore, amIDs[len(amBefore):]}} {
		if len(split.after) == 0 {
			t.Errorf("%s: nothing delivered after the restart; the decline should have eased the level", split.name)
		}
		seen := map[string]bool{}
		for _, id := range split.before {
			seen[id] = true
		}
		for _, id := range split.after {
			if seen[id] {
				t.Errorf("%s: %s re-sent after the restart", split.name, id)
			}
		}
	}
	if n := len(otherHook.all()); n != 0 {
		t.Errorf("%s's webhook got %d requests, want 0", alOther, n)
	}
	if n := len(amDefault.all()); n != 0 {
		t.Errorf("Alertmanager's default receiver got %d notifications, want 0 (routing by region)", n)
	}
	// Alertmanager merges the alerts of decisions with equal labels (say
	// two days of "strengthen" at the top level): one notification each.
	got := notified(true)
	for k := range amKeys {
		if got[k] != 1 {
			t.Errorf("Alertmanager notified alert %s %d times, want exactly once", k, got[k])
		}
	}
	for k, c := range got {
		if !amKeys[k] {
			t.Errorf("Alertmanager notified alert %s (%d times), which no decision raised", k, c)
		}
	}

	// The delivery records in ClickHouse: one "sent" per alert and channel.
	want := len(wantHook) + len(wantAM)
	q := "SELECT count() FROM `" + p.db.Name + "`.alerts WHERE region = '" + alRegion + "'"
	eventually(t, 30*time.Second, "the alert records in ClickHouse", func() bool { return p.db.Count(t, q) >= uint64(want) })
	if n := p.db.Count(t, q+" AND status = 'sent' AND escalated = 0 AND channel IN ('"+hookChannel+"', 'alertmanager')"); n != uint64(want) {
		t.Errorf("%d sent alert records, want %d", n, want)
	}
	if n := p.db.Count(t, q); n != uint64(want) {
		t.Errorf("%d alert records, want %d (one per alert and channel)", n, want)
	}
	if n := p.db.Count(t, "SELECT uniqExact(alert_id) FROM `"+p.db.Name+"`.alerts"); n != uint64(want) {
		t.Errorf("%d distinct alert ids recorded, want %d", n, want)
	}

	checkLevels(t, all, sc.Start, sim.End().AddDays(-1))
	// Diagnostic only: a day decided before all its events were applied
	// (JetStream may hand the processor events out of stream order; data mode
	// decides day D once day D+1 has indicators) lacks its bed occupancy.
	partial := p.db.Count(t, "SELECT count() FROM `"+p.db.Name+"`.decisions WHERE region = '"+alRegion+"' AND date >= '"+sc.Start.String()+"' AND isNull(bed_occupancy_pct)")
	t.Logf("done in %s: %d decisions (%d of simulated days without bed occupancy), %d alerts per channel (%d before the restart), %d Alertmanager alerts; level path %s",
		time.Since(begin).Round(time.Millisecond), len(all), partial, len(wantHook), len(wantHookBefore), len(amKeys), levelPath(all))
}

// checkLevels checks the decided levels: every data day decided once, in
// order; the level moves one step at a time, up on strengthen and down on
// ease; it rose and eased; an ease takes effect only after
// min_days_before_ease days at the level, and is held before.
func checkLevels(t *testing.T, ds []alDecision, first, last schemas.Date) {
	t.Helper()
	if len(ds) == 0 {
		t.Fatal("no decisions")
	}
	// The region's first indicators can predate the simulated period (a
	// seed case's contacts were exposed before it).
	if ds[0].date > first || ds[len(ds)-1].date != last || len(ds) != int(last-ds[0].date)+1 {
		t.Errorf("decisions for %d days from %s to %s, want each day from %s or before to %s once", len(ds), ds[0].date, ds[len(ds)-1].date, first, last)
	}
	level, since := 1, ds[0].date // a region starts at the mildest level on its first day
	rises, eases, held := 0, 0, 0
	for i, d := range ds {
		if i > 0 && d.date != ds[i-1].date+1 {
			t.Errorf("decision %s follows %s: want one per day", d.id, ds[i-1].id)
		}
		if d.from != level {
			t.Errorf("%s: level_from %d, but the level was %d", d.id, d.from, level)
		}
		atLevel := int(d.date - since)
		switch {
		case d.to == d.from+1:
			rises++
			if d.action != "strengthen" {
				t.Errorf("%s: level rose on %q", d.id, d.action)
			}
		case d.to == d.from-1:
			eases++
			if d.action != "ease" {
				t.Errorf("%s: level fell on %q", d.id, d.action)
			}
			if atLevel < alEaseDays {
				t.Errorf("%s: eased after %d days at level %d, want at least %d", d.id, atLevel, d.from, alEaseDays)
			}
		case d.to == d.from:
			if d.action == "ease" && d.from > 1 {
				held++
				if atLevel >= alEaseDays || !strings.Contains(d.reason, "ease held") {
					t.Errorf("%s: ease not applied after %d days at level %d (reason %q)", d.id, atLevel, d.from, d.reason)
				}
			}
		default:
			t.Errorf("%s: level jumped %d → %d", d.id, d.from, d.to)
		}
		if d.to != level {
			level, since = d.to, d.date
		}
	}
	if rises == 0 || eases == 0 || held == 0 {
		t.Errorf("%d rises, %d eases, %d held eases: want each at least once\n%s", rises, eases, held, formatDecisions(ds))
	}
}

func levelPath(ds []alDecision) string {
	var b strings.Builder
	for i, d := range ds {
		if i == 0 || d.to != d.from {
			fmt.Fprintf(&b, "%s:%d ", d.date, d.to)
		}
	}
	return strings.TrimSpace(b.String())
}

func formatDecisions(ds []alDecision) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "  %s %-10s %d→%d %s\n", d.date, d.action, d.from, d.to, d.reason)
	}
	return b.String()
}
