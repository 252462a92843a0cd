package alerts

import (
	"errors"
	// The digest's timezone must load on hosts without a zone database.
	_ "time/tzdata"

	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Config configures the alerter. Durations are Go durations in YAML ("30s").
type Config struct {
	// AlertmanagerURL is the base URL of a Prometheus Alertmanager (e.g.
	// http://alertmanager:9093); alerts go to {url}/api/v2/alerts. Empty: no
	// Alertmanager channel (and no silence check).
	AlertmanagerURL string `mapstructure:"alertmanager_url" yaml:"alertmanager_url"`
	// DashboardURL is the region dashboard (Grafana's
	// .../d/epiwatch-region/region); the region is added as var-region. Empty:
	// alerts carry no link.
	DashboardURL string `mapstructure:"dashboard_url" yaml:"dashboard_url"`
	// AckBaseURL is how headquarters reach this alerter's acknowledgement
	// endpoint (e.g. https://epiwatch.example.kz); webhook payloads then carry
	// ack_url = {AckBaseURL}/v1/alerts/{alert_id}/ack. Empty: payloads carry
	// only the ack_token and the receiver must know the address.
	AckBaseURL string `mapstructure:"ack_base_url" yaml:"ack_base_url"`
	// Webhooks are direct, signed deliveries to headquarters.
	Webhooks []Webhook `mapstructure:"webhooks" yaml:"webhooks"`

	// Timeout bounds one HTTP attempt.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// MaxAttempts is how many HTTP attempts one delivery round makes before
	// it records a failure and hands the decision back to JetStream, which
	// redelivers it later (until GiveUpAfter).
	MaxAttempts int `mapstructure:"max_attempts" yaml:"max_attempts"`
	// Backoff is the wait after the first failed attempt; it doubles after
	// each further failure, capped at MaxBackoff. A Retry-After header of a
	// 429 or 503 answer is honoured up to MaxBackoff.
	Backoff    time.Duration `mapstructure:"backoff" yaml:"backoff"`
	MaxBackoff time.Duration `mapstructure:"max_backoff" yaml:"max_backoff"`
	// GiveUpAfter is how long after its first attempt an undeliverable alert
	// is still retried; then it is recorded as failed for good.
	GiveUpAfter time.Duration `mapstructure:"give_up_after" yaml:"give_up_after"`
	// ResolveAfter sets an Alertmanager alert's endsAt (send time +
	// ResolveAfter), so a decision alert does not fire forever.
	ResolveAfter time.Duration `mapstructure:"resolve_after" yaml:"resolve_after"`
	// EscalateAfter is how long headquarters have to acknowledge a webhook
	// alert before it is re-sent, once, to the webhook's SecondURL. 0 turns
	// escalation off.
	EscalateAfter time.Duration `mapstructure:"escalate_after" yaml:"escalate_after"`
	// EscalateCheck is how often unacknowledged alerts are looked for.
	EscalateCheck time.Duration `mapstructure:"escalate_check" yaml:"escalate_check"`
	// MaxDecisionAge skips decisions older than this (by decided_at), so that
	// a new consumer replaying the decisions stream, or a backlog after a
	// long outage, does not page headquarters about last month. 0: never skip.
	MaxDecisionAge time.Duration `mapstructure:"max_decision_age" yaml:"max_decision_age"`

	// Digest is the daily digest of each region's signal alarms.
	Digest DigestConfig `mapstructure:"digest" yaml:"digest"`
}

// Digest triggers (DigestConfig.Trigger).
const (
	// DigestOnSchedule sends, every day at DigestConfig.At in
	// DigestConfig.Timezone, the digest of the previous local day.
	DigestOnSchedule = "schedule"
	// DigestOnDecision sends the digest of data day D when a region's
	// decision for D reaches the alerter — the mode for `epiwatch run
	// --simulate`, whose simulated days never meet a wall-clock schedule.
	DigestOnDecision = "decision"
)

// DigestConfig configures the daily digest: once a day per region, one
// low-severity message listing the data day's signal alarms.
type DigestConfig struct {
	// Enabled turns the digest on.
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Trigger is DigestOnSchedule or DigestOnDecision.
	Trigger string `mapstructure:"trigger" yaml:"trigger"`
	// At is the local time of day ("HH:MM", 24 h) of the scheduled digest.
	At string `mapstructure:"at" yaml:"at"`
	// Timezone is the IANA zone At is read in; its calendar decides which
	// data day "yesterday" is.
	Timezone string `mapstructure:"timezone" yaml:"timezone"`
	// Lookback is how far back (by publish time) EPI_SIGNALS and
	// EPI_DECISIONS are read for a digest: signals of the data day published
	// earlier than this are not seen.
	Lookback time.Duration `mapstructure:"lookback" yaml:"lookback"`
}

// Webhook is one headquarters endpoint that receives signed JSON alerts.
type Webhook struct {
	// Name identifies the webhook in records and metrics (channel
	// "webhook:<name>"): letters, digits, '-' and '_'.
	Name string `mapstructure:"name" yaml:"name"`
	URL  string `mapstructure:"url" yaml:"url"`
	// Secret is the HMAC-SHA256 key shared with the receiver (or SecretFile,
	// a file holding it; surrounding whitespace is trimmed).
	Secret     string `mapstructure:"secret" yaml:"secret"`
	SecretFile string `mapstructure:"secret_file" yaml:"secret_file"`
	// Regions this webhook receives alerts for (ISO 3166-2 codes, as in
	// schemas/regions.csv); "*" means all.
	Regions []string `mapstructure:"regions" yaml:"regions"`
	// SecondURL is the escalation contact: an alert not acknowledged within
	// EscalateAfter is sent there once (signed with the same secret). Empty:
	// no escalation for this webhook.
	SecondURL string `mapstructure:"second_url" yaml:"second_url"`
}

// DefaultConfig returns the defaults: no channels (configure
// alertmanager_url and/or webhooks), 10 s per attempt, 5 attempts per round
// with backoff 1 s doubling to 30 s, retried for a day, Alertmanager alerts
// resolving after 24 h, escalation after 2 h, decisions older than 3 days
// not alerted.
func DefaultConfig() Config {
	return Config{
		Timeout:        10 * time.Second,
		MaxAttempts:    5,
		Backoff:        time.Second,
		MaxBackoff:     30 * time.Second,
		GiveUpAfter:    24 * time.Hour,
		ResolveAfter:   24 * time.Hour,
		EscalateAfter:  2 * time.Hour,
		EscalateCheck:  time.Minute,
		MaxDecisionAge: 72 * time.Hour,
		Digest: DigestConfig{
			Enabled:  true,
			Trigger:  DigestOnSchedule,
			At:       "09:00",
			Timezone: "Asia/Almaty",
			Lookback: 7 * 24 * time.Hour,
		},
	}
}

var webhookName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Validate reports every problem, naming the key at fault.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	checkURL := func(key, s string) {
		if err := httpURL(s); err != nil {
			bad("%s: %v", key, err)
		}
	}
	if c.AlertmanagerURL != "" {
		checkURL("alerts.alertmanager_url", c.AlertmanagerURL)
	}
	if c.DashboardURL != "" {
		checkURL("alerts.dashboard_url", c.DashboardURL)
	}
	if c.AckBaseURL != "" {
		checkURL("alerts.ack_base_url", c.AckBaseURL)
	}
	if c.Timeout <= 0 {
		bad("alerts.timeout: must be positive, not %s", c.Timeout)
	}
	if c.MaxAttempts < 1 {
		bad("alerts.max_attempts: must be at least 1, not %d", c.MaxAttempts)
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		bad("alerts.backoff (%s) must be positive and at most alerts.max_backoff (%s)", c.Backoff, c.MaxBackoff)
	}
	if c.GiveUpAfter < 0 || c.ResolveAfter <= 0 || c.EscalateAfter < 0 || c.MaxDecisionAge < 0 {
		bad("alerts.give_up_after, resolve_after, escalate_after, max_decision_age: must not be negative (resolve_after positive)")
	}
	if c.EscalateAfter > 0 && c.EscalateCheck <= 0 {
		bad("alerts.escalate_check: must be positive when escalate_after is set")
	}
	if c.Digest.Enabled {
		switch c.Digest.Trigger {
		case DigestOnSchedule, DigestOnDecision:
		default:
			bad("alerts.digest.trigger: %q (want %q or %q)", c.Digest.Trigger, DigestOnSchedule, DigestOnDecision)
		}
		if _, err := parseClock(c.Digest.At); err != nil {
			bad("alerts.digest.at: %v", err)
		}
		if _, err := time.LoadLocation(c.Digest.Timezone); err != nil || c.Digest.Timezone == "" {
			bad("alerts.digest.timezone: %q is not an IANA time zone (e.g. Asia/Almaty, UTC)", c.Digest.Timezone)
		}
		if c.Digest.Lookback <= 0 {
			bad("alerts.digest.lookback: must be positive, not %s", c.Digest.Lookback)
		}
	}
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		key := fmt.Sprintf("alerts.webhooks[%d]", i)
		if !webhookName.MatchString(w.Name) {
			bad("%s.name: %q (want letters, digits, '-' or '_')", key, w.Name)
		} else if seen[w.Name] {
			bad("%s.name: %q repeats an earlier webhook", key, w.Name)
		}
		seen[w.Name] = true
		checkURL(key+".url", w.URL)
		if w.SecondURL != "" {
			checkURL(key+".second_url", w.SecondURL)
		}
		if (w.Secret == "") == (w.SecretFile == "") {
			bad("%s: set exactly one of secret and secret_file (the receiver verifies the signature with it)", key)
		}
		if len(w.Regions) == 0 {
			bad("%s.regions: list region codes, or \"*\" for all", key)
		}
	}
	return errors.Join(errs...)
}

// parseClock reads "HH:MM" as the time since midnight.
func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (24 h)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func httpURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// secret returns the webhook's HMAC key.
func (w Webhook) secret() ([]byte, error) {
	if w.SecretFile == "" {
		return []byte(w.Secret), nil
	}
	b, err := os.ReadFile(w.SecretFile)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: read secret_file: %w", w.Name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return nil, fmt.Errorf("webhook %s: secret_file %s is empty", w.Name, w.SecretFile)
	}
	return []byte(s), nil
}

// covers reports whether the webhook receives alerts for region.
func (w Webhook) covers(region string) bool {
	for _, r := range w.Regions {
		if r == "*" || r == region {
			return true
		}
	}
	return false
}
