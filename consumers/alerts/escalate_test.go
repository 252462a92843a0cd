package alerts

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

func escalationConfig(primary, second string) Config {
	c := webhookConfig(primary, "KZ-75")
	c.Webhooks[0].SecondURL = second
	c.EscalateAfter = 700 * time.Millisecond
	c.EscalateCheck = 50 * time.Millisecond
	return c
}

// ackAlert POSTs an acknowledgement to the handler and returns the status.
func ackAlert(t *testing.T, h http.Handler, alertID, token, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/v1/alerts/"+url.PathEscape(alertID)+"/ack", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

// TestEscalation: without an acknowledgement the alert goes to the second
// contact once, recorded as escalated; with one, it does not.
func TestEscalation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		ack   bool
		after time.Duration // escalate_after: roomy where the test must act first
		want  int
	}{
		{"no ack escalates once", false, 700 * time.Millisecond, 1},
		{"ack stops escalation", true, 2 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := streamtest.New(t)
			hq, second := newReceiver(t), newReceiver(t)
			cfg := escalationConfig(hq.URL, second.URL)
			cfg.EscalateAfter = tc.after
			a := start(t, srv, cfg)
			d := decision("KZ-75", "2020-07-10")
			id := d.DecisionID + ":webhook:kz-75-hq"
			publish(t, srv.JS, d, d.DecisionID)
			waitFor(t, 10*time.Second, "the primary delivery", func() bool { return len(hq.delivered()) == 1 })
			if tc.ack {
				var p WebhookPayload
				if err := json.Unmarshal(hq.delivered()[0].body, &p); err != nil {
					t.Fatal(err)
				}
				if code := ackAlert(t, a.AckHandler(), id, p.AckToken, `{"by":"duty officer"}`); code != http.StatusOK {
					t.Fatalf("ack answered %d, want 200", code)
				}
			}
			if tc.want > 0 {
				waitFor(t, 10*time.Second, "the escalation", func() bool { return len(second.delivered()) >= 1 })
			}
			time.Sleep(tc.after + 800*time.Millisecond) // past the escalation time, many checks
			if got := len(second.delivered()); got != tc.want {
				t.Fatalf("second contact got %d alerts, want %d", got, tc.want)
			}
			if len(hq.all()) != 1 {
				t.Errorf("primary contact got %d requests, want 1", len(hq.all()))
			}
			rs := recordsOf(records(t, srv.JS), escalationID(id))
			if tc.want == 0 {
				if len(rs) != 0 {
					t.Errorf("escalation records %+v after an ack", rs)
				}
				return
			}
			if len(rs) != 1 || !rs[0].Escalated || rs[0].Status != schemas.AlertSent || rs[0].Channel != "webhook:kz-75-hq" {
				t.Errorf("escalation records %+v, want one sent, escalated", rs)
			}
			got := second.delivered()[0]
			if err := Verify([]byte(secret), got.header.Get(HeaderTimestamp), got.header.Get(HeaderSignature), got.body, time.Now(), time.Minute); err != nil {
				t.Errorf("escalation signature: %v", err)
			}
			var p WebhookPayload
			if err := json.Unmarshal(got.body, &p); err != nil {
				t.Fatal(err)
			}
			if !p.Escalated || p.IdempotencyKey != escalationID(id) || !strings.HasPrefix(p.Summary, "ESCALATED") {
				t.Errorf("escalation payload %+v", p)
			}
			if n := counter(t, a.reg, "epiwatch_alert_escalations_total", "channel", "webhook:kz-75-hq"); n != 1 {
				t.Errorf("escalations counter %v, want 1", n)
			}
		})
	}
}

// TestEscalationOfFailedDelivery: a primary that refuses the alert (400)
// never acknowledges it, so the second contact gets it.
func TestEscalationOfFailedDelivery(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq, second := newReceiver(t, 400), newReceiver(t)
	start(t, srv, escalationConfig(hq.URL, second.URL))
	d := decision("KZ-75", "2020-07-11")
	publish(t, srv.JS, d, d.DecisionID)
	waitFor(t, 10*time.Second, "the escalation of a failed delivery", func() bool { return len(second.delivered()) == 1 })
}

// TestAckHandler: authentication and idempotence of the acknowledgement endpoint.
func TestAckHandler(t *testing.T) {
	t.Parallel()
	srv := streamtest.New(t)
	hq := newReceiver(t)
	cfg := webhookConfig(hq.URL, "KZ-75")
	cfg.AckBaseURL = "https://epiwatch.example.kz/"
	a := start(t, srv, cfg)
	d := decision("KZ-75", "2020-07-12")
	id := d.DecisionID + ":webhook:kz-75-hq"
	publish(t, srv.JS, d, d.DecisionID)
	waitFor(t, 10*time.Second, "the delivery", func() bool { return len(hq.delivered()) == 1 })
	var p WebhookPayload
	if err := json.Unmarshal(hq.delivered()[0].body, &p); err != nil {
		t.Fatal(err)
	}
	if want := "https://epiwatch.example.kz/v1/alerts/" + url.PathEscape(id) + "/ack"; p.AckURL != want {
		t.Errorf("ack_url %q, want %q", p.AckURL, want)
	}
	h := a.AckHandler()
	for _, tc := range []struct {
		name, id, token, body string
		want                  int
	}{
		{"no token", id, "", "", http.StatusUnauthorized},
		{"wrong token", id, AckToken([]byte("other"), id), "", http.StatusForbidden},
		{"token of another alert", id, AckToken([]byte(secret), "KZ-75:2020-07-13:kz-2020:v1:webhook:kz-75-hq"), "", http.StatusForbidden},
		{"unknown alert", "KZ-75:1999-01-01:x:webhook:kz-75-hq", p.AckToken, "", http.StatusNotFound},
		{"bad body", id, p.AckToken, "{", http.StatusBadRequest},
		{"ok", id, p.AckToken, "", http.StatusOK},
		{"again", id, p.AckToken, `{"by":"someone"}`, http.StatusOK},
	} {
		if got := ackAlert(t, h, tc.id, tc.token, tc.body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	if n := counter(t, a.reg, "epiwatch_alert_acks_total", "source", "endpoint"); n != 1 {
		t.Errorf("acks counter %v, want 1 (the second ack is a no-op)", n)
	}
}
