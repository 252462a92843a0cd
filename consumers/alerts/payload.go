package alerts

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// Alert kinds (schemas.AlertRecord.Kind).
const (
	KindLevelChange = "level_change"
	KindStrengthen  = "strengthen"
)

// AlertName is the alertname label of every decision alert in Alertmanager.
const AlertName = "EpiwatchRestrictionLevel"

// ChannelAlertmanager names the Alertmanager channel in records and metrics;
// webhooks are "webhook:<name>".
const ChannelAlertmanager = "alertmanager"

// kindOf says whether a decision deserves an alert: every level change, and
// every strengthen recommendation (a strengthen that changed the level is one
// level_change alert). "" means no alert (keep or ease without a change).
func kindOf(d *schemas.Decision) string {
	switch {
	case d.LevelFrom != d.LevelTo:
		return KindLevelChange
	case d.Action == schemas.ActionStrengthen:
		return KindStrengthen
	}
	return ""
}

// alertID is the idempotency key of delivering decision d on one channel; the
// receiver sees it as idempotency_key.
func alertID(decisionID, channel string) string { return decisionID + ":" + channel }

// escalationID is the alert id of the one re-send of alertID to the second contact.
func escalationID(alertID string) string { return alertID + ":escalated" }

// severity maps the level reached to Alertmanager's usual severities: the
// mildest level is info, the second warning, any stricter one critical.
func severity(level int) string {
	switch {
	case level <= 1:
		return "info"
	case level == 2:
		return "warning"
	}
	return "critical"
}

// trend is the decision's trend label — P(R < 1) in EpiNow2's words, which
// the processor gives only for an R that rests on enough cases — or, for a
// decision without one (an R from few cases, or an older decision), the
// direction read from R's 95 % credible interval: growing when even its
// lower bound is above 1, declining when even its upper bound is below 1,
// otherwise uncertain (or unknown without R).
func trend(d *schemas.Decision) string {
	if d.Trend != "" {
		return d.Trend
	}
	switch {
	case d.RQ025 != nil && *d.RQ025 > 1:
		return "growing"
	case d.RQ975 != nil && *d.RQ975 < 1:
		return "declining"
	case d.RMean != nil:
		return "uncertain"
	}
	return "unknown"
}

// dashboardLink is the region dashboard with var-region set; "" without a base.
func dashboardLink(base, region string) string {
	if base == "" {
		return ""
	}
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set("var-region", region)
	u.RawQuery = q.Encode()
	return u.String()
}

// labels are the Alertmanager labels of a decision alert; they identify the
// alert there (same labels = same alert) and drive routing by region.
func labels(d *schemas.Decision) map[string]string {
	return map[string]string{
		"alertname":   AlertName,
		"region":      d.Region,
		"region_name": d.RegionName,
		"level":       strconv.Itoa(d.LevelTo),
		"level_name":  d.LevelToName,
		"action":      d.Action,
		"rule_set":    d.RuleSet,
		"severity":    severity(d.LevelTo),
	}
}

func regionTitle(d *schemas.Decision) string {
	if d.RegionName == "" {
		return d.Region
	}
	return d.RegionName + " (" + d.Region + ")"
}

func summary(d *schemas.Decision, kind string) string {
	if kind == KindLevelChange {
		return fmt.Sprintf("%s: restriction level %s → %s", regionTitle(d), d.LevelFromName, d.LevelToName)
	}
	return fmt.Sprintf("%s: rule set recommends strengthening; level stays %s", regionTitle(d), d.LevelToName)
}

func num(p *float64, format string) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *p)
}

func description(d *schemas.Decision, kind, dashboard string) string {
	var b strings.Builder
	if kind == KindLevelChange {
		fmt.Fprintf(&b, "Restriction level of %s changed from %s to %s (%s)", regionTitle(d), d.LevelFromName, d.LevelToName, d.Action)
	} else {
		fmt.Fprintf(&b, "The rule set recommends strengthening restrictions in %s; the level stays %s", regionTitle(d), d.LevelToName)
	}
	fmt.Fprintf(&b, ", decided for %s under rule set %s %s", d.Date, d.RuleSet, d.RuleSetVersion)
	if d.Clause != "" {
		fmt.Fprintf(&b, ", clause %q", d.Clause)
	}
	b.WriteString(".")
	if d.Reason != "" {
		fmt.Fprintf(&b, " Reason: %s.", strings.TrimSuffix(d.Reason, "."))
	}
	method := d.RMethod
	if method == "" {
		method = "R"
	}
	fmt.Fprintf(&b, " R = %s (95%% CrI %s–%s, %s); P(R > 1) = %s; infectious-bed occupancy (ПЗК) = %s; trend: %s.",
		num(d.RMean, "%.2f"), num(d.RQ025, "%.2f"), num(d.RQ975, "%.2f"), method, num(d.RProbAbove1, "%.2f"), num(d.BedOccupancyPct, "%.1f%%"), trend(d))
	if d.RStatus == schemas.RStatusFewCases {
		fmt.Fprintf(&b, " R rests on %d cases: too few to decide on.", d.RCases)
	}
	if d.Origin == schemas.OriginManual {
		fmt.Fprintf(&b, " Level set by hand by %s", d.SetBy)
		if !d.ManualUntil.IsZero() {
			fmt.Fprintf(&b, " until %s", d.ManualUntil)
		}
		b.WriteString(".")
	}
	if !d.DataAsOf.IsZero() {
		fmt.Fprintf(&b, " Data as of %s.", d.DataAsOf)
	}
	if len(d.Flags) > 0 {
		fmt.Fprintf(&b, " Data-quality flags: %s.", strings.Join(d.Flags, ", "))
	}
	if dashboard != "" {
		fmt.Fprintf(&b, " Dashboard: %s", dashboard)
	}
	return b.String()
}

// amAlert is an Alertmanager API v2 postable alert.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertmanagerAlert builds the alert posted to Alertmanager. It starts when
// the decision was made and ends resolveAfter after now, so it neither fires
// forever nor arrives already resolved when sent late.
func alertmanagerAlert(d *schemas.Decision, kind, id, dashboardBase string, now time.Time, resolveAfter time.Duration) amAlert {
	link := dashboardLink(dashboardBase, d.Region)
	ann := map[string]string{
		"summary":     summary(d, kind),
		"description": description(d, kind, link),
		"alert_id":    id,
		"decision_id": d.DecisionID,
		"kind":        kind,
		"trend":       trend(d),
	}
	if link != "" {
		ann["dashboard"] = link
	}
	starts := d.DecidedAt.UTC()
	if starts.IsZero() || starts.After(now) {
		starts = now.UTC()
	}
	return amAlert{Labels: labels(d), Annotations: ann, StartsAt: starts, EndsAt: now.UTC().Add(resolveAfter), GeneratorURL: link}
}

// WebhookPayload is the JSON body POSTed to a headquarters webhook. Its bytes
// depend only on the decision, the webhook and whether it is the escalation,
// so every retry and re-send of one alert is byte-identical.
type WebhookPayload struct {
	// IdempotencyKey (= AlertID) is the same on every retry and re-send of
	// this alert: receivers must drop a key they have already processed.
	IdempotencyKey string `json:"idempotency_key"`
	AlertID        string `json:"alert_id"`
	DecisionID     string `json:"decision_id"`
	Kind           string `json:"kind"`
	// Escalated marks the re-send to the second contact of an alert the
	// primary contact did not acknowledge.
	Escalated bool   `json:"escalated"`
	Severity  string `json:"severity"`
	Summary   string `json:"summary"`
	// Description is the same text as Alertmanager's description annotation.
	Description string `json:"description"`

	Region         string       `json:"region"`
	RegionName     string       `json:"region_name"`
	Date           schemas.Date `json:"date"`
	DecidedAt      time.Time    `json:"decided_at"`
	Action         string       `json:"action"`
	RuleSet        string       `json:"rule_set"`
	RuleSetVersion string       `json:"rule_set_version"`
	Clause         string       `json:"clause"`
	Reason         string       `json:"reason"`
	LevelFrom      int          `json:"level_from"`
	LevelTo        int          `json:"level_to"`
	LevelFromName  string       `json:"level_from_name"`
	LevelToName    string       `json:"level_to_name"`

	RMethod         string   `json:"r_method"`
	RMean           *float64 `json:"r_mean"`
	RQ025           *float64 `json:"r_q025"`
	RQ975           *float64 `json:"r_q975"`
	BedOccupancyPct *float64 `json:"bed_occupancy_pct"`
	RProbAbove1     *float64 `json:"r_prob_above_1"`
	RStatus         string   `json:"r_status,omitempty"`
	Trend           string   `json:"trend"`
	// Origin is rule or manual (a headquarters set the level: SetBy).
	Origin   string       `json:"origin,omitempty"`
	SetBy    string       `json:"set_by,omitempty"`
	DataAsOf schemas.Date `json:"data_as_of"`
	Flags    []string     `json:"flags,omitempty"`

	DashboardURL string `json:"dashboard_url,omitempty"`
	// AckURL and AckToken acknowledge the alert: POST AckURL with header
	// "Authorization: Bearer <AckToken>". Without an acknowledgement within
	// the configured time the alert goes to the second contact.
	AckURL   string `json:"ack_url,omitempty"`
	AckToken string `json:"ack_token"`
}

func webhookPayload(d *schemas.Decision, kind, id string, escalated bool, dashboardBase, ackBase string, secret []byte) WebhookPayload {
	link := dashboardLink(dashboardBase, d.Region)
	p := WebhookPayload{
		IdempotencyKey: id, AlertID: id, DecisionID: d.DecisionID, Kind: kind, Escalated: escalated,
		Severity: severity(d.LevelTo), Summary: summary(d, kind), Description: description(d, kind, link),
		Region: d.Region, RegionName: d.RegionName, Date: d.Date, DecidedAt: d.DecidedAt.UTC(),
		Action: d.Action, RuleSet: d.RuleSet, RuleSetVersion: d.RuleSetVersion, Clause: d.Clause, Reason: d.Reason,
		LevelFrom: d.LevelFrom, LevelTo: d.LevelTo, LevelFromName: d.LevelFromName, LevelToName: d.LevelToName,
		RMethod: d.RMethod, RMean: d.RMean, RQ025: d.RQ025, RQ975: d.RQ975, BedOccupancyPct: d.BedOccupancyPct,
		RProbAbove1: d.RProbAbove1, RStatus: d.RStatus, Trend: trend(d), Origin: d.Origin, SetBy: d.SetBy,
		DataAsOf: d.DataAsOf, Flags: d.Flags,
		DashboardURL: link,
		AckToken:     AckToken(secret, id),
	}
	if escalated {
		p.Summary = "ESCALATED (not acknowledged): " + p.Summary
	}
	if ackBase != "" {
		p.AckURL = strings.TrimRight(ackBase, "/") + "/v1/alerts/" + url.PathEscape(id) + "/ack"
	}
	return p
}
