package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/alerttest"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// startAlertmanager runs a real Alertmanager configured from
// testdata/alertmanager.yml.tmpl and returns its base URL.
func startAlertmanager(t *testing.T, region, regionURL, defaultURL string) string {
	t.Helper()
	return alerttest.Start(t, alerttest.Render(t, "testdata/alertmanager.yml.tmpl",
		map[string]string{"Region": region, "RegionURL": regionURL, "DefaultURL": defaultURL}))
}

// amNotification is what Alertmanager's webhook receiver gets.
type amNotification struct {
	Receiver string `json:"receiver"`
	Status   string `json:"status"`
	Alerts   []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
		StartsAt    time.Time         `json:"startsAt"`
		EndsAt      time.Time         `json:"endsAt"`
	} `json:"alerts"`
}

// TestAlertmanager: a decision reaches a real Alertmanager, which routes it
// by region to the region's receiver, exactly once although the decision is
// delivered twice and the alerter restarted.
func TestAlertmanager(t *testing.T) {
	t.Parallel()
	regionHQ, other := newReceiver(t), newReceiver(t)
	am := startAlertmanager(t, "KZ-75", regionHQ.URL, other.URL)
	srv := streamtest.New(t)
	cfg := testConfig()
	cfg.AlertmanagerURL = am
	a := start(t, srv, cfg)
	d := decision("KZ-75", "2020-08-01")
	publish(t, srv.JS, d, d.DecisionID)
	waitFor(t, 10*time.Second, "Alertmanager's notification to the region's receiver", func() bool { return len(regionHQ.delivered()) >= 1 })
	publish(t, srv.JS, d, d.DecisionID+":replayed")
	waitIdle(t, srv.JS)
	a.stop()
	start(t, srv, cfg)
	publish(t, srv.JS, d, d.DecisionID+":after-restart")
	waitIdle(t, srv.JS)
	time.Sleep(2500 * time.Millisecond) // more than two group_intervals: a second alert would be notified by now

	got := regionHQ.delivered()
	if len(got) != 1 {
		t.Fatalf("region receiver got %d notifications, want 1", len(got))
	}
	if n := len(other.all()); n != 0 {
		t.Errorf("default receiver got %d notifications, want 0 (routing by region)", n)
	}
	var n amNotification
	if err := json.Unmarshal(got[0].body, &n); err != nil {
		t.Fatal(err)
	}
	if n.Receiver != "hq-region" || n.Status != "firing" || len(n.Alerts) != 1 {
		t.Fatalf("notification %+v, want one firing alert for hq-region", n)
	}
	al := n.Alerts[0]
	want := map[string]string{
		"alertname": AlertName, "region": "KZ-75", "region_name": "Almaty", "level": "3", "level_name": "3 - high",
		"action": "strengthen", "rule_set": "kz-2020", "severity": "critical",
	}
	for k, v := range want {
		if al.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, al.Labels[k], v)
		}
	}
	if len(al.Labels) != len(want) {
		t.Errorf("labels %v, want exactly %v", al.Labels, want)
	}
	if !strings.Contains(al.Annotations["summary"], "2 - moderate → 3 - high") ||
		!strings.Contains(al.Annotations["description"], "R = 1.35 (95% CrI 1.20–1.52, cori)") ||
		!strings.Contains(al.Annotations["description"], "trend: growing") ||
		al.Annotations["dashboard"] != "http://grafana.test/d/epiwatch-region/region?var-region=KZ-75" {
		t.Errorf("annotations %v", al.Annotations)
	}
	if !al.StartsAt.Equal(d.DecidedAt) {
		t.Errorf("startsAt %s, want the decision time %s", al.StartsAt, d.DecidedAt)
	}
	// Notifications of firing alerts carry no endsAt; Alertmanager's API does.
	resp, err := http.Get(am + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var live []struct {
		EndsAt time.Time         `json:"endsAt"`
		Labels map[string]string `json:"labels"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&live); err != nil {
		t.Fatal(err)
	}
	if len(live) != 1 {
		t.Fatalf("Alertmanager holds %d alerts, want 1", len(live))
	}
	if ends := time.Until(live[0].EndsAt); ends < cfg.ResolveAfter-time.Minute || ends > cfg.ResolveAfter {
		t.Errorf("endsAt in %s, want about resolve_after (%s)", ends, cfg.ResolveAfter)
	}
	rs := recordsOf(records(t, srv.JS), d.DecisionID+":alertmanager")
	if len(rs) != 1 || rs[0].Status != schemas.AlertSent || rs[0].Channel != ChannelAlertmanager {
		t.Errorf("records %+v, want one sent to alertmanager", rs)
	}
}

// TestAlertmanagerSilenceIsAck: an active silence on the region in the real
// Alertmanager acknowledges the region's alerts, so they do not escalate;
// another region's alert, not silenced, does (the control).
func TestAlertmanagerSilenceIsAck(t *testing.T) {
	t.Parallel()
	regionHQ, other := newReceiver(t), newReceiver(t)
	am := startAlertmanager(t, "KZ-75", regionHQ.URL, other.URL)
	silence := fmt.Sprintf(`{"matchers":[{"name":"region","value":"KZ-75","isRegex":false,"isEqual":true}],
		"startsAt":%q,"endsAt":%q,"createdBy":"hq-kz-75","comment":"seen, handling it"}`,
		time.Now().UTC().Format(time.RFC3339), time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	resp, err := http.Post(am+"/api/v2/silences", "application/json", strings.NewReader(silence))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create silence: %s", resp.Status)
	}

	srv := streamtest.New(t)
	hq, second := newReceiver(t), newReceiver(t)
	cfg := escalationConfig(hq.URL, second.URL)
	cfg.Webhooks[0].Regions = []string{"*"}
	cfg.AlertmanagerURL = am
	a := start(t, srv, cfg)
	silenced, loud := decision("KZ-75", "2020-08-02"), decision("KZ-71", "2020-08-02")
	publish(t, srv.JS, silenced, silenced.DecisionID)
	publish(t, srv.JS, loud, loud.DecisionID)
	waitFor(t, 10*time.Second, "the unsilenced region's escalation", func() bool { return len(second.delivered()) >= 1 })
	time.Sleep(1500 * time.Millisecond)

	got := second.delivered()
	if len(got) != 1 {
		t.Fatalf("second contact got %d alerts, want 1 (KZ-71 only)", len(got))
	}
	var p WebhookPayload
	if err := json.Unmarshal(got[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Region != "KZ-71" {
		t.Errorf("escalated region %s, want KZ-71 (KZ-75 is silenced)", p.Region)
	}
	if n := counter(t, a.reg, "epiwatch_alert_acks_total", "source", "alertmanager_silence"); n != 1 {
		t.Errorf("silence acks %v, want 1", n)
	}
	kv, err := srv.JS.KeyValue(context.Background(), schemas.BucketAlertClaims)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), ackKey(silenced.DecisionID))
	if err != nil {
		t.Fatalf("no acknowledgement stored for the silenced decision: %v", err)
	}
	if !strings.Contains(string(e.Value()), "alertmanager silence") {
		t.Errorf("acknowledgement %s, want it to name the silence", e.Value())
	}
	if n := len(regionHQ.all()); n != 0 {
		t.Errorf("Alertmanager notified the silenced region %d times", n)
	}
}
