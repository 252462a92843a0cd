package alerts

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// publishSignal puts s on EPI_SIGNALS.
func publishSignal(t *testing.T, js jetstream.JetStream, s schemas.Signal) {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := stream.NewBus(js).Publisher().PublishSync(ctx, stream.Msg{Subject: schemas.SignalSubject(s.Region), ID: s.MsgID(data), Data: data}); err != nil {
		t.Fatalf("publish signal: %v", err)
	}
}

func signal(region, day, series, method string, version uint64, alarm bool, excess float64) schemas.Signal {
	return schemas.Signal{Region: region, Date: schemas.MustDate(day), Period: schemas.PeriodDay, Stream: series, Method: method,
		Version: version, Observed: fp(10 * excess), UpperBound: fp(10), Excess: fp(excess), Alarm: alarm}
}

// daySignals are KZ-75's signals around 2020-07-01 (three alarms that
// count, in stream order, with versions that do not) and KZ-71's, none an
// alarm that day.
func daySignals() []schemas.Signal {
	return []schemas.Signal{
		signal("KZ-75", "2020-07-01", schemas.SignalCases, schemas.MethodEARSC2, 1, true, 1.8),
		signal("KZ-75", "2020-07-01", schemas.SignalTestsPositive, schemas.MethodEARSC3, 1, true, 2.5),
		// An alarm withdrawn by a later version.
		signal("KZ-75", "2020-07-01", schemas.SignalBedsOccupied, schemas.MethodEARSC2, 1, true, 3.0),
		signal("KZ-75", "2020-07-01", schemas.SignalBedsOccupied, schemas.MethodEARSC2, 2, false, 0.9),
		// An older version arriving late does not withdraw the alarm.
		signal("KZ-75", "2020-07-01", schemas.SignalCases, schemas.MethodEARSC3, 2, true, 1.2),
		signal("KZ-75", "2020-07-01", schemas.SignalCases, schemas.MethodEARSC3, 1, false, 0.8),
		// Another day's alarm.
		signal("KZ-75", "2020-06-30", schemas.SignalCases, schemas.MethodEARSC2, 1, true, 4.0),
		signal("KZ-71", "2020-07-01", schemas.SignalCases, schemas.MethodEARSC2, 1, false, 0.5),
		signal("KZ-71", "2020-06-30", schemas.SignalCases, schemas.MethodEARSC2, 1, true, 1.5),
	}
}

// keepDecision is a decision that changes nothing (no level alert).
func keepDecision(region, day string) schemas.Decision {
	d := decision(region, day)
	d.Action, d.LevelFrom, d.LevelFromName = schemas.ActionKeep, 3, "3 - high"
	d.Trend, d.RProbAbove1 = "likely increasing", fp(0.93)
	return d
}

var almaty = func() *time.Location { l, _ := time.LoadLocation("Asia/Almaty"); return l }()

// at10 is the clock of an alerter at 10:00 in Almaty on 2020-07-02: past
// the 09:00 digest of data day 2020-07-01.
func at10(a *Alerter) { a.now = func() time.Time { return time.Date(2020, 7, 2, 10, 0, 0, 0, almaty) } }

func digestConfig(url string) Config {
	c := webhookConfig(url, "*")
	c.Digest = DigestConfig{Enabled: true, Trigger: DigestOnSchedule, At: "09:00", Timezone: "Asia/Almaty", Lookback: 7 * 24 * time.Hour}
	return c
}

func digestPayloads(t *testing.T, rs []received) []DigestPayload {
	t.Helper()
	var out []DigestPayload
	for _, r := range rs {
		var p DigestPayload
		if err := json.Unmarshal(r.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.Kind == KindDigest {
			out = append(out, p)
		}
	}
	return out
}

// TestDigestOnSchedule: at 09:00 Almaty the region with alarms on the
// previous day gets one digest listing them largest excess first, with the
// trend and P(R > 1) of its decision; the region without gets none; a
// restarted alerter sends nothing more. The negative control, without
// claims, sends again after the restart.
func TestDigestOnSchedule(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		noClaims bool
		want     int
	}{
		{"claims", false, 1},
		{"negative control: no claims", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := streamtest.New(t)
			hq := newReceiver(t)
			for _, s := range daySignals() {
				publishSignal(t, srv.JS, s)
			}
			d, other := keepDecision("KZ-75", "2020-07-01"), keepDecision("KZ-71", "2020-07-01")
			older := keepDecision("KZ-75", "2020-06-30")
			older.DecisionID, older.Trend, older.RProbAbove1 = "KZ-75:2020-06-30:kz-2020:v1", "stable", fp(0.4)
			for _, x := range []schemas.Decision{older, d, other} {
				publish(t, srv.JS, x, x.DecisionID)
			}
			cfg := digestConfig(hq.URL)
			tweak := func(a *Alerter) { at10(a); a.noClaims = tc.noClaims }
			first := start(t, srv, cfg, tweak)
			waitFor(t, 10*time.Second, "the digest", func() bool { return len(hq.delivered()) >= 1 })
			waitIdle(t, srv.JS)
			id := "digest:KZ-75:2020-07-01:webhook:kz-75-hq"
			if !tc.noClaims {
				waitFor(t, 10*time.Second, "the digest's claim to be final and recorded", func() bool {
					c, ok := digestClaimOf(t, srv.JS, "KZ-75", "2020-07-01", "webhook:kz-75-hq")
					return ok && c.State == stateSent && c.Recorded
				})
			}
			time.Sleep(300 * time.Millisecond)
			first.stop()
			second := start(t, srv, cfg, tweak)
			time.Sleep(1500 * time.Millisecond) // the restarted alerter's catch-up run
			second.stop()

			got := hq.delivered()
			if len(got) != tc.want {
				t.Fatalf("receiver got %d deliveries, want %d", len(got), tc.want)
			}
			if tc.noClaims {
				return
			}
			ps := digestPayloads(t, got)
			if len(ps) != 1 {
				t.Fatalf("got %d digests, want 1", len(ps))
			}
			p := ps[0]
			if p.Region != "KZ-75" || p.Date != schemas.MustDate("2020-07-01") || p.IdempotencyKey != id || got[0].header.Get(HeaderIdempotencyKey) != id ||
				p.Severity != "info" || p.Trend != "likely increasing" || p.RProbAbove1 == nil || *p.RProbAbove1 != 0.93 || p.DecisionID != d.DecisionID {
				t.Errorf("payload %+v", p)
			}
			var order []string
			for _, al := range p.Alarms {
				order = append(order, al.Stream+"/"+al.Method)
			}
			if want := "tests_positive/ears-c3 cases/ears-c2 cases/ears-c3"; strings.Join(order, " ") != want {
				t.Errorf("alarms %v, want %s (largest excess first, latest versions only)", order, want)
			}
			if !strings.Contains(p.Description, "1. tests_positive by ears-c3") || !strings.Contains(p.Description, "P(R > 1) = 0.93") ||
				!strings.Contains(p.Summary, "3 signal alarms") {
				t.Errorf("summary %q, description %q", p.Summary, p.Description)
			}
			if err := Verify([]byte(secret), got[0].header.Get(HeaderTimestamp), got[0].header.Get(HeaderSignature), got[0].body,
				time.Date(2020, 7, 2, 10, 0, 0, 0, almaty), time.Minute); err != nil {
				t.Errorf("digest signature: %v", err)
			}
			rs := records(t, srv.JS)
			if mine := recordsOf(rs, id); len(mine) != 1 || mine[0].Status != schemas.AlertSent || mine[0].Kind != KindDigest || mine[0].DecisionID != "digest:KZ-75:2020-07-01" {
				t.Errorf("records %+v, want one sent digest", mine)
			}
			if len(rs) != 1 {
				t.Errorf("records %+v, want only the KZ-75 digest (KZ-71 had no alarm on 2020-07-01)", rs)
			}
			if _, ok := digestClaimOf(t, srv.JS, "KZ-71", "2020-07-01", "webhook:kz-75-hq"); ok {
				t.Error("an empty day left a claim")
			}
			if n := counter(t, second.reg, "epiwatch_alerts_sent_total", "channel", "webhook:kz-75-hq"); n != 0 {
				t.Errorf("restarted alerter counted %v sends, want 0", n)
			}
		})
	}
}

func digestClaimOf(t *testing.T, js jetstream.JetStream, region, day, channel string) (claim, bool) {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), schemas.BucketAlertClaims)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), digestKey(region, schemas.MustDate(day), channel))
	if err != nil {
		return claim{}, false
	}
	var c claim
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		t.Fatal(err)
	}
	return c, true
}

// TestDigestStalePendingClaimTakenOver: an alerter died between claiming a
// digest and recording its delivery; the next one takes the claim over and
// sends the stored digest once, with the same idempotency key, and a later
// restart sends nothing.
func TestDigestStalePendingClaimTakenOver(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t)
	sigs := daySignals()
	for _, s := range sigs {
		publishSignal(t, srv.JS, s)
	}
	d := keepDecision("KZ-75", "2020-07-01")
	publish(t, srv.JS, d, d.DecisionID)
	g := digestOf("KZ-75", d.Date, sigs, &d)
	channel := "webhook:kz-75-hq"
	id := g.ID + ":" + channel
	kv, err := srv.JS.KeyValue(context.Background(), schemas.BucketAlertClaims)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 7, 2, 9, 0, 0, 0, almaty).UTC()
	dead := claim{State: statePending, AlertID: id, DecisionID: g.ID, Region: "KZ-75", Channel: channel, Kind: KindDigest,
		Owner: "dead-alerter", ClaimedAt: old, UpdatedAt: old, Attempts: 1, Digest: g}
	if _, err := kv.Create(context.Background(), dead.key(), mustJSON(dead)); err != nil {
		t.Fatal(err)
	}
	cfg := digestConfig(hq.URL)
	a := start(t, srv, cfg, at10)
	waitFor(t, 10*time.Second, "the digest's claim to be final and recorded", func() bool {
		c, ok := digestClaimOf(t, srv.JS, "KZ-75", "2020-07-01", channel)
		return ok && c.State == stateSent && c.Recorded
	})
	a.stop()
	restarted := start(t, srv, cfg, at10)
	time.Sleep(1500 * time.Millisecond) // its catch-up run
	restarted.stop()
	got := hq.delivered()
	if len(got) != 1 || got[0].header.Get(HeaderIdempotencyKey) != id {
		t.Fatalf("deliveries %d, want 1 with idempotency key %s", len(got), id)
	}
	if ps := digestPayloads(t, got); len(ps) != 1 || len(ps[0].Alarms) != 3 {
		t.Errorf("payloads %+v, want the stored digest with 3 alarms", ps)
	}
	c, _ := digestClaimOf(t, srv.JS, "KZ-75", "2020-07-01", channel)
	if c.Attempts != 2 || !c.ClaimedAt.Equal(old) {
		t.Errorf("claim %+v, want 2 attempts in all, first claimed %s", c, old)
	}
	if rs := recordsOf(records(t, srv.JS), id); len(rs) != 1 || rs[0].Status != schemas.AlertSent {
		t.Errorf("records %+v, want one sent", rs)
	}
}

// TestDigestOnDecisionAlertmanager: with trigger "decision" the digest of a
// day goes out when the region's decision for it arrives, to a real
// Alertmanager, as an info alert of kind digest — once, although the
// decision is delivered again after a restart.
func TestDigestOnDecisionAlertmanager(t *testing.T) {
	t.Parallel()
	regionHQ, other := newReceiver(t), newReceiver(t)
	am := startAlertmanager(t, "KZ-75", regionHQ.URL, other.URL)
	srv := streamtest.New(t)
	cfg := testConfig()
	cfg.AlertmanagerURL = am
	cfg.Digest = DigestConfig{Enabled: true, Trigger: DigestOnDecision, At: "09:00", Timezone: "UTC", Lookback: time.Hour}
	for _, s := range daySignals() {
		publishSignal(t, srv.JS, s)
	}
	a := start(t, srv, cfg)
	empty := keepDecision("KZ-71", "2020-07-01")
	d := keepDecision("KZ-75", "2020-07-01")
	publish(t, srv.JS, empty, empty.DecisionID)
	publish(t, srv.JS, d, d.DecisionID)
	waitFor(t, 10*time.Second, "Alertmanager's notification of the digest", func() bool { return len(regionHQ.delivered()) >= 1 })
	waitIdle(t, srv.JS)
	a.stop()
	start(t, srv, cfg)
	publish(t, srv.JS, d, d.DecisionID+":after-restart")
	waitIdle(t, srv.JS)
	time.Sleep(2500 * time.Millisecond) // more than two group_intervals

	got := regionHQ.delivered()
	if len(got) != 1 {
		t.Fatalf("region receiver got %d notifications, want 1", len(got))
	}
	if n := len(other.all()); n != 0 {
		t.Errorf("default receiver got %d notifications, want 0 (KZ-71 had no alarm)", n)
	}
	var n amNotification
	if err := json.Unmarshal(got[0].body, &n); err != nil {
		t.Fatal(err)
	}
	if len(n.Alerts) != 1 {
		t.Fatalf("notification %+v, want one alert", n)
	}
	al := n.Alerts[0]
	want := map[string]string{"alertname": DigestAlertName, "region": "KZ-75", "region_name": "Almaty", "date": "2020-07-01", "kind": "digest", "severity": "info"}
	for k, v := range want {
		if al.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, al.Labels[k], v)
		}
	}
	if len(al.Labels) != len(want) {
		t.Errorf("labels %v, want exactly %v", al.Labels, want)
	}
	desc := al.Annotations["description"]
	i1, i2, i3 := strings.Index(desc, "tests_positive by ears-c3"), strings.Index(desc, "cases by ears-c2"), strings.Index(desc, "cases by ears-c3")
	if i1 < 0 || i2 < i1 || i3 < i2 || strings.Contains(desc, "beds_occupied") || al.Annotations["trend"] != "likely increasing" ||
		al.Annotations["r_prob_above_1"] != "0.93" || al.Annotations["kind"] != KindDigest {
		t.Errorf("annotations %v", al.Annotations)
	}
	rs := records(t, srv.JS)
	if mine := recordsOf(rs, "digest:KZ-75:2020-07-01:alertmanager"); len(mine) != 1 || mine[0].Status != schemas.AlertSent || mine[0].Kind != KindDigest {
		t.Errorf("records %+v, want one sent digest", mine)
	}
	if len(rs) != 1 {
		t.Errorf("records %+v, want only the digest", rs)
	}
}

func TestDigestConfigValidate(t *testing.T) {
	c := DefaultConfig()
	c.Digest = DigestConfig{Enabled: true, Trigger: "hourly", At: "9am", Timezone: "Mars/Olympus", Lookback: 0}
	err := c.Validate()
	if err == nil {
		t.Fatal("bad digest configuration accepted")
	}
	for _, key := range []string{"alerts.digest.trigger", "alerts.digest.at", "alerts.digest.timezone", "alerts.digest.lookback"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error %q does not name %s", err, key)
		}
	}
	c.Digest.Enabled = false
	if err := c.Validate(); err != nil {
		t.Errorf("disabled digest: %v", err)
	}
}
