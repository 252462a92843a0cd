package alerts

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

const secret = "s3cret-shared-with-hq"

func webhookConfig(url string, regions ...string) Config {
	c := testConfig()
	c.Webhooks = []Webhook{{Name: "kz-75-hq", URL: url, Secret: secret, Regions: regions}}
	return c
}

// TestWebhookSignedPayload: the receiver gets one signed request whose
// signature verifies over the raw body and whose payload carries the facts.
func TestWebhookSignedPayload(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t)
	start(t, srv, webhookConfig(hq.URL, "KZ-75"))
	d := decision("KZ-75", "2020-07-01")
	publish(t, srv.JS, d, d.DecisionID)
	waitFor(t, 10*time.Second, "the webhook delivery", func() bool { return len(hq.delivered()) == 1 })

	got := hq.delivered()[0]
	ts, sig := got.header.Get(HeaderTimestamp), got.header.Get(HeaderSignature)
	if err := Verify([]byte(secret), ts, sig, got.body, time.Now(), time.Minute); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if err := Verify([]byte("wrong secret"), ts, sig, got.body, time.Now(), time.Minute); err == nil {
		t.Error("signature verifies with the wrong secret")
	}
	tampered := []byte(strings.Replace(string(got.body), "KZ-75", "KZ-71", 1))
	if err := Verify([]byte(secret), ts, sig, tampered, time.Now(), time.Minute); err == nil {
		t.Error("signature verifies a tampered body")
	}
	var p WebhookPayload
	if err := json.Unmarshal(got.body, &p); err != nil {
		t.Fatal(err)
	}
	wantID := d.DecisionID + ":webhook:kz-75-hq"
	if p.IdempotencyKey != wantID || got.header.Get(HeaderIdempotencyKey) != wantID {
		t.Errorf("idempotency key %q (header %q), want %q", p.IdempotencyKey, got.header.Get(HeaderIdempotencyKey), wantID)
	}
	if p.Kind != KindLevelChange || p.LevelFrom != 2 || p.LevelTo != 3 || p.Region != "KZ-75" || p.Severity != "critical" || p.Trend != "growing" ||
		!strings.Contains(p.Description, "R = 1.35 (95% CrI 1.20–1.52") || !strings.Contains(p.Description, "ПЗК) = 72.5%") ||
		p.DashboardURL != "http://grafana.test/d/epiwatch-region/region?var-region=KZ-75" || p.AckToken != AckToken([]byte(secret), wantID) {
		t.Errorf("payload: %+v", p)
	}
	waitIdle(t, srv.JS)
	rs := recordsOf(records(t, srv.JS), wantID)
	if len(rs) != 1 || rs[0].Status != schemas.AlertSent || rs[0].Attempts != 1 || rs[0].Channel != "webhook:kz-75-hq" || rs[0].Kind != KindLevelChange {
		t.Errorf("records %+v, want one sent after 1 attempt", rs)
	}
}

// TestWebhookExactlyOnce: the same decision delivered three times — twice to
// one alerter, once more to a new alerter after a restart — reaches the
// receiver once. The negative control runs without claims and must send
// twice, proving the test can see a duplicate.
func TestWebhookExactlyOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		noClaims bool
		want     int
	}{
		{"claims", false, 1},
		{"negative control: no claims", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := streamtest.New(t)
			hq := newReceiver(t)
			cfg := webhookConfig(hq.URL, "*")
			tweak := func(a *Alerter) { a.noClaims = tc.noClaims }
			first := start(t, srv, cfg, tweak)
			d := decision("KZ-75", "2020-07-01")
			publish(t, srv.JS, d, d.DecisionID)
			waitFor(t, 10*time.Second, "the first delivery", func() bool { return len(hq.delivered()) >= 1 })
			publish(t, srv.JS, d, d.DecisionID+":replayed")
			waitIdle(t, srv.JS)

			first.stop()
			second := start(t, srv, cfg, tweak)
			publish(t, srv.JS, d, d.DecisionID+":after-restart")
			waitIdle(t, srv.JS)
			if got := len(hq.delivered()); got != tc.want {
				t.Fatalf("receiver got %d deliveries, want %d", got, tc.want)
			}
			if tc.noClaims {
				return
			}
			id := d.DecisionID + ":webhook:kz-75-hq"
			if rs := recordsOf(records(t, srv.JS), id); len(rs) != 1 || rs[0].Status != schemas.AlertSent {
				t.Errorf("records %+v, want exactly one sent", rs)
			}
			if c, ok := claimOf(t, srv.JS, id); !ok || c.State != stateSent || !c.Recorded {
				t.Errorf("claim %+v, want sent and recorded", c)
			}
			if n := counter(t, second.reg, "epiwatch_alerts_sent_total", "channel", "webhook:kz-75-hq"); n != 0 {
				t.Errorf("restarted alerter counted %v sends, want 0", n)
			}
		})
	}
}

// TestWebhookRetry: two 503s, then 200: one delivery, three attempts.
func TestWebhookRetry(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t, 503, 503)
	a := start(t, srv, webhookConfig(hq.URL, "KZ-75"))
	d := decision("KZ-75", "2020-07-02")
	publish(t, srv.JS, d, d.DecisionID)
	waitIdle(t, srv.JS)
	all := hq.all()
	if len(all) != 3 || len(hq.delivered()) != 1 {
		t.Fatalf("receiver saw %d requests (%d delivered), want 3 (1)", len(all), len(hq.delivered()))
	}
	for i := 1; i < len(all); i++ {
		if string(all[i].body) != string(all[0].body) {
			t.Errorf("attempt %d body differs from the first: retries must be byte-identical", i+1)
		}
	}
	rs := recordsOf(records(t, srv.JS), d.DecisionID+":webhook:kz-75-hq")
	if len(rs) != 1 || rs[0].Status != schemas.AlertSent || rs[0].Attempts != 3 {
		t.Errorf("records %+v, want one sent after 3 attempts", rs)
	}
	if n := counter(t, a.reg, "epiwatch_alerts_sent_total", "channel", "webhook:kz-75-hq"); n != 1 {
		t.Errorf("sent counter %v, want 1", n)
	}
	if n := counter(t, a.reg, "epiwatch_alert_delivery_seconds", "channel", "webhook:kz-75-hq"); n != 1 {
		t.Errorf("delivery histogram count %v, want 1", n)
	}
}

// TestWebhookTransientRoundsThenSent: a round whose attempts all fail is
// recorded as failed (will retry), the decision is redelivered by JetStream,
// and the next round delivers.
func TestWebhookTransientRoundsThenSent(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t, 503, 503) // with MaxAttempts 2: the first round fails
	cfg := webhookConfig(hq.URL, "KZ-75")
	cfg.MaxAttempts = 2
	a := start(t, srv, cfg)
	d := decision("KZ-75", "2020-07-03")
	publish(t, srv.JS, d, d.DecisionID)
	waitFor(t, 10*time.Second, "the delivery in a second round", func() bool { return len(hq.delivered()) == 1 })
	waitIdle(t, srv.JS)
	rs := recordsOf(records(t, srv.JS), d.DecisionID+":webhook:kz-75-hq")
	if len(rs) != 2 || rs[0].Status != schemas.AlertFailed || !strings.Contains(rs[0].Error, "will retry") || rs[1].Status != schemas.AlertSent || rs[1].Attempts != 3 {
		t.Errorf("records %+v, want failed (will retry) then sent after 3 attempts", rs)
	}
	if n := counter(t, a.reg, "epiwatch_alerts_failed_total", "channel", "webhook:kz-75-hq"); n != 1 {
		t.Errorf("failed counter %v, want 1", n)
	}
}

// TestWebhookPermanentFailure: a 400 is not retried, is recorded failed, and
// a redelivery of the decision does not try again.
func TestWebhookPermanentFailure(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t, 400, 400, 400)
	a := start(t, srv, webhookConfig(hq.URL, "KZ-75"))
	d := decision("KZ-75", "2020-07-04")
	publish(t, srv.JS, d, d.DecisionID)
	waitIdle(t, srv.JS)
	publish(t, srv.JS, d, d.DecisionID+":replayed")
	waitIdle(t, srv.JS)
	if n := len(hq.all()); n != 1 {
		t.Fatalf("receiver saw %d requests, want 1 (no retry after 400)", n)
	}
	rs := recordsOf(records(t, srv.JS), d.DecisionID+":webhook:kz-75-hq")
	if len(rs) != 1 || rs[0].Status != schemas.AlertFailed || rs[0].Attempts != 1 || !strings.Contains(rs[0].Error, "400") {
		t.Errorf("records %+v, want one failed after 1 attempt with the 400", rs)
	}
	if n := counter(t, a.reg, "epiwatch_alerts_failed_total", "channel", "webhook:kz-75-hq"); n != 1 {
		t.Errorf("failed counter %v, want 1", n)
	}
}

// TestNoAlert: keep and ease decisions without a level change send nothing,
// nor do decisions older than max_decision_age;
// a strengthen without a change (already at the strictest level) sends a
// strengthen alert; other regions' webhooks are not told.
func TestNoAlert(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t)
	start(t, srv, webhookConfig(hq.URL, "KZ-75"))
	keep := decision("KZ-75", "2020-07-05")
	keep.Action, keep.LevelFrom, keep.LevelTo, keep.LevelFromName = schemas.ActionKeep, 3, 3, "3 - high"
	ease := decision("KZ-75", "2020-07-06")
	ease.Action, ease.LevelFrom, ease.LevelTo, ease.LevelFromName = schemas.ActionEase, 3, 3, "3 - high"
	other := decision("KZ-71", "2020-07-05")
	stale := decision("KZ-75", "2020-06-01") // older than max_decision_age: a replay, not news
	stale.DecidedAt = time.Now().Add(-100 * time.Hour)
	for _, d := range []schemas.Decision{keep, ease, other, stale} {
		publish(t, srv.JS, d, d.DecisionID)
	}
	waitIdle(t, srv.JS)
	if n := len(hq.all()); n != 0 {
		t.Fatalf("receiver got %d requests for keep/ease/other-region decisions, want 0", n)
	}
	if rs := records(t, srv.JS); len(rs) != 0 {
		t.Errorf("records %+v, want none", rs)
	}
	if _, ok := claimOf(t, srv.JS, keep.DecisionID+":webhook:kz-75-hq"); ok {
		t.Error("a keep decision left a claim")
	}

	top := decision("KZ-75", "2020-07-07")
	top.LevelFrom, top.LevelTo, top.LevelFromName, top.LevelToName = 4, 4, "4 - maximum", "4 - maximum"
	publish(t, srv.JS, top, top.DecisionID)
	waitIdle(t, srv.JS)
	if got := hq.delivered(); len(got) != 1 {
		t.Fatalf("strengthen at the strictest level: %d deliveries, want 1", len(got))
	} else {
		var p WebhookPayload
		_ = json.Unmarshal(got[0].body, &p)
		if p.Kind != KindStrengthen {
			t.Errorf("kind %q, want %q", p.Kind, KindStrengthen)
		}
	}
}

// TestStalePendingClaimTakenOver: an alerter died after claiming (the claim
// is pending, old, owned by someone else): the next delivery takes it over
// and sends, with the same idempotency key as the dead one would have.
func TestStalePendingClaimTakenOver(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t)
	d := decision("KZ-75", "2020-07-08")
	id := d.DecisionID + ":webhook:kz-75-hq"
	ctx := context.Background()
	kv, err := srv.JS.KeyValue(ctx, schemas.BucketAlertClaims)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).UTC()
	dead := claim{State: statePending, AlertID: id, DecisionID: d.DecisionID, Region: d.Region, Channel: "webhook:kz-75-hq",
		Kind: KindLevelChange, Owner: "dead-alerter", ClaimedAt: old, UpdatedAt: old, Attempts: 1, Rounds: 0, Decision: d}
	if _, err := kv.Create(ctx, claimKey(id), mustJSON(dead)); err != nil {
		t.Fatal(err)
	}
	start(t, srv, webhookConfig(hq.URL, "KZ-75"))
	publish(t, srv.JS, d, d.DecisionID)
	waitIdle(t, srv.JS)
	got := hq.delivered()
	if len(got) != 1 || got[0].header.Get(HeaderIdempotencyKey) != id {
		t.Fatalf("deliveries %d, want 1 with idempotency key %s", len(got), id)
	}
	c, _ := claimOf(t, srv.JS, id)
	if c.State != stateSent || c.Attempts != 2 || !c.ClaimedAt.Equal(old) {
		t.Errorf("claim %+v, want sent, 2 attempts in all, first claimed %s", c, old)
	}
}

// TestFreshPendingClaimLeftAlone: a pending claim of a live alerter (fresh)
// is not taken over; the decision is retried later instead.
func TestFreshPendingClaimLeftAlone(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t)
	d := decision("KZ-75", "2020-07-09")
	id := d.DecisionID + ":webhook:kz-75-hq"
	ctx := context.Background()
	kv, err := srv.JS.KeyValue(ctx, schemas.BucketAlertClaims)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	busy := claim{State: statePending, AlertID: id, DecisionID: d.DecisionID, Region: d.Region, Channel: "webhook:kz-75-hq",
		Kind: KindLevelChange, Owner: "live-alerter", ClaimedAt: now, UpdatedAt: now, Decision: d}
	if _, err := kv.Create(ctx, claimKey(id), mustJSON(busy)); err != nil {
		t.Fatal(err)
	}
	start(t, srv, webhookConfig(hq.URL, "KZ-75"))
	publish(t, srv.JS, d, d.DecisionID)
	time.Sleep(time.Second)
	if n := len(hq.all()); n != 0 {
		t.Fatalf("receiver got %d requests while another alerter held a fresh claim, want 0", n)
	}
}

// TestShutdownFinishesAttempt: cancelling Run while an HTTP attempt is in
// flight lets that attempt finish and records its outcome, so the restarted
// alerter does not send again.
func TestShutdownFinishesAttempt(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	arrived := make(chan struct{}, 10)
	var mu sync.Mutex
	n := 0
	hq := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		arrived <- struct{}{}
		time.Sleep(700 * time.Millisecond) // still answering when shutdown starts
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hq.Close)
	cfg := webhookConfig(hq.URL, "KZ-75")
	a := start(t, srv, cfg)
	d := decision("KZ-75", "2020-07-14")
	publish(t, srv.JS, d, d.DecisionID)
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery attempt")
	}
	began := time.Now()
	a.stop()
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("shutdown took %s", took)
	}
	id := d.DecisionID + ":webhook:kz-75-hq"
	if c, _ := claimOf(t, srv.JS, id); c.State != stateSent || !c.Recorded {
		t.Fatalf("claim after shutdown %+v, want sent and recorded", c)
	}
	start(t, srv, cfg)
	publish(t, srv.JS, d, d.DecisionID+":after-restart")
	waitIdle(t, srv.JS)
	mu.Lock()
	defer mu.Unlock()
	if n != 1 {
		t.Errorf("receiver got %d requests, want 1", n)
	}
	if rs := recordsOf(records(t, srv.JS), id); len(rs) != 1 || rs[0].Status != schemas.AlertSent {
		t.Errorf("records %+v, want one sent", rs)
	}
}
