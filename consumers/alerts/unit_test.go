package alerts

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/golden"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestSignKnownVector checks Sign and AckToken against HMAC-SHA256 computed
// independently (Python's hmac module), so a receiver in any language
// reproduces them.
func TestSignKnownVector(t *testing.T) {
	if got, want := Sign([]byte("s3cret"), "1700000000", []byte(`{"a":1}`)), "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
	if got, want := AckToken([]byte("s3cret"), "KZ-75:2020-07-01:kz-2020:v1:webhook:hq"), "afe4cc13c16ce7ddde6351dd3146d696db287575ee91d06f2f15fcfb73230d48"; got != want {
		t.Errorf("AckToken = %s, want %s", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	sig := Sign([]byte("k"), "1700000000", body)
	for _, tc := range []struct {
		name, ts, sig string
		body          []byte
		ok            bool
	}{
		{"good", "1700000000", sig, body, true},
		{"within skew", "1700000200", Sign([]byte("k"), "1700000200", body), body, true},
		{"too old", "1699999000", Sign([]byte("k"), "1699999000", body), body, false},
		{"timestamp not signed", "1700000001", sig, body, false},
		{"body changed", "1700000000", sig, []byte(`{"a":2}`), false},
		{"no prefix", "1700000000", strings.TrimPrefix(sig, "sha256="), body, false},
		{"garbage timestamp", "yesterday", sig, body, false},
	} {
		err := Verify([]byte("k"), tc.ts, tc.sig, tc.body, now, 5*time.Minute)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestClaimKey: keys are valid JetStream KV keys, a single token (no '.'),
// and distinct ids give distinct keys.
func TestClaimKey(t *testing.T) {
	valid := regexp.MustCompile(`^[-_=A-Za-z0-9]+$`)
	ids := []string{
		"KZ-75:2020-07-01:kz-2020:v1:alertmanager",
		"KZ-75_2020-07-01_kz-2020_v1_alertmanager",
		"KZ-75:2020-07-01:kz.2020:v1.2:webhook:hq",
		"KZ-75:2020-07-01:kz=2020:v1/2:webhook:hq:escalated",
		"a=3Ab", "a:b", ".leading", "trailing.", "ünïcode",
	}
	seen := map[string]string{}
	for _, id := range ids {
		k := claimKey(id)
		if !valid.MatchString(k) {
			t.Errorf("claimKey(%q) = %q: not a single-token KV key", id, k)
		}
		if prev, dup := seen[k]; dup {
			t.Errorf("claimKey(%q) = claimKey(%q) = %q", id, prev, k)
		}
		seen[k] = id
	}
	if k := ackKey("KZ-75:2020-07-01"); k != "ack.KZ-75=3A2020-07-01" {
		t.Errorf("ackKey = %q", k)
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		action   string
		from, to int
		want     string
	}{
		{schemas.ActionStrengthen, 2, 3, KindLevelChange},
		{schemas.ActionEase, 3, 2, KindLevelChange},
		{schemas.ActionStrengthen, 4, 4, KindStrengthen},
		{schemas.ActionKeep, 2, 2, ""},
		{schemas.ActionEase, 2, 2, ""}, // ease held back by the minimum time at a level
	} {
		d := schemas.Decision{Action: tc.action, LevelFrom: tc.from, LevelTo: tc.to}
		if got := kindOf(&d); got != tc.want {
			t.Errorf("%s %d→%d: kind %q, want %q", tc.action, tc.from, tc.to, got, tc.want)
		}
	}
}

func TestSilenced(t *testing.T) {
	no := false
	lbls := labels(&schemas.Decision{Region: "KZ-75", LevelTo: 3, Action: "strengthen", RuleSet: "kz-2020"})
	active := func(ms ...amMatcher) amSilence {
		s := amSilence{ID: "s", Matchers: ms}
		s.Status.State = "active"
		return s
	}
	for _, tc := range []struct {
		name string
		s    amSilence
		want bool
	}{
		{"region equal", active(amMatcher{Name: "region", Value: "KZ-75"}), true},
		{"other region", active(amMatcher{Name: "region", Value: "KZ-71"}), false},
		{"regex", active(amMatcher{Name: "region", Value: "KZ-7.", IsRegex: true}), true},
		{"regex is anchored", active(amMatcher{Name: "region", Value: "KZ", IsRegex: true}), false},
		{"not equal", active(amMatcher{Name: "region", Value: "KZ-71", IsEqual: &no}), true},
		{"all matchers must match", active(amMatcher{Name: "region", Value: "KZ-75"}, amMatcher{Name: "severity", Value: "info"}), false},
		{"alertname and region", active(amMatcher{Name: "alertname", Value: AlertName}, amMatcher{Name: "region", Value: "KZ-75"}), true},
		{"expired", func() amSilence {
			s := active(amMatcher{Name: "region", Value: "KZ-75"})
			s.Status.State = "expired"
			return s
		}(), false},
		{"no matchers", active(), false},
	} {
		if got := silenced([]amSilence{tc.s}, lbls) != nil; got != tc.want {
			t.Errorf("%s: silenced = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.AlertmanagerURL = "http://alertmanager:9093"
	good.Webhooks = []Webhook{{Name: "hq", URL: "https://hq.example/hook", Secret: "x", Regions: []string{"*"}}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name  string
		mod   func(*Config)
		field string
	}{
		{"bad am url", func(c *Config) { c.AlertmanagerURL = "alertmanager:9093" }, "alerts.alertmanager_url"},
		{"no attempts", func(c *Config) { c.MaxAttempts = 0 }, "alerts.max_attempts"},
		{"backoff over max", func(c *Config) { c.Backoff = time.Hour }, "alerts.backoff"},
		{"bad name", func(c *Config) { c.Webhooks[0].Name = "h q" }, "alerts.webhooks[0].name"},
		{"duplicate name", func(c *Config) { c.Webhooks = append(c.Webhooks, c.Webhooks[0]) }, "alerts.webhooks[1].name"},
		{"no secret", func(c *Config) { c.Webhooks[0].Secret = "" }, "alerts.webhooks[0]: set exactly one of secret"},
		{"no regions", func(c *Config) { c.Webhooks[0].Regions = nil }, "alerts.webhooks[0].regions"},
		{"bad second url", func(c *Config) { c.Webhooks[0].SecondURL = "mailto:x@y" }, "alerts.webhooks[0].second_url"},
	} {
		c := good
		c.Webhooks = append([]Webhook(nil), good.Webhooks...)
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v, want it to name %s", tc.name, err, tc.field)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2020, 7, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-1":                            0,
		"Wed, 01 Jul 2020 12:00:30 GMT": 30 * time.Second,
		"soon":                          0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestGoldenPayloads pins the wire format headquarters and Alertmanager see.
// Regenerate with go test ./consumers/alerts -run Golden -update.
func TestGoldenPayloads(t *testing.T) {
	d := decision("KZ-75", "2020-07-01")
	d.DecidedAt = time.Date(2020, 7, 3, 4, 0, 0, 0, time.UTC)
	d.Flags = []string{"stale_beds"}
	now := time.Date(2020, 7, 3, 4, 0, 5, 0, time.UTC)
	id := alertID(d.DecisionID, "webhook:kz-75-hq")
	for name, v := range map[string]any{
		"webhook_payload.golden.json":    webhookPayload(&d, KindLevelChange, id, false, "http://grafana.example/d/epiwatch-region/region", "https://epiwatch.example.kz", []byte(secret)),
		"alertmanager_alert.golden.json": []amAlert{alertmanagerAlert(&d, KindLevelChange, alertID(d.DecisionID, ChannelAlertmanager), "http://grafana.example/d/epiwatch-region/region", now, 24*time.Hour)},
	} {
		got, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		golden.Check(t, filepath.Join("testdata", name), got)
	}
}

// TestTrendWords: the decision's own trend label (EpiNow2's words of
// P(R < 1)) wins; without one the credible interval is read.
func TestTrendWords(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		d    schemas.Decision
		want string
	}{
		{schemas.Decision{Trend: "likely decreasing", RMean: f(0.9), RQ025: f(0.7), RQ975: f(1.1)}, "likely decreasing"},
		{schemas.Decision{RMean: f(1.4), RQ025: f(1.2), RQ975: f(1.6)}, "growing"},
		{schemas.Decision{RMean: f(0.8), RQ025: f(0.6), RQ975: f(0.95)}, "declining"},
		{schemas.Decision{RMean: f(1.0), RQ025: f(0.8), RQ975: f(1.2)}, "uncertain"},
		{schemas.Decision{}, "unknown"},
	} {
		if got := trend(&tc.d); got != tc.want {
			t.Errorf("%+v: trend %q, want %q", tc.d, got, tc.want)
		}
	}
	d := schemas.Decision{RMean: f(1.3), RProbAbove1: f(0.93), RStatus: schemas.RStatusFewCases, RCases: 4, Origin: schemas.OriginManual, SetBy: "token:hq"}
	desc := description(&d, KindLevelChange, "")
	for _, want := range []string{"P(R > 1) = 0.93", "R rests on 4 cases: too few to decide on.", "Level set by hand by token:hq."} {
		if !strings.Contains(desc, want) {
			t.Errorf("description %q lacks %q", desc, want)
		}
	}
}
