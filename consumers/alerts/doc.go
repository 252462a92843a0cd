// Package alerts tells regional headquarters about restriction decisions. It
// consumes schemas.Decision from the decisions stream (durable consumer
// schemas.ConsumerAlerts) and alerts on every decision that changed the
// region's level (kind level_change) and on every strengthen recommendation
// that did not (kind strengthen, e.g. at the strictest level already). Keep
// and ease decisions without a level change send nothing.
//
// # Channels
//
// Alertmanager (alerts.alertmanager_url): POST {url}/api/v2/alerts with the
// labels alertname="EpiwatchRestrictionLevel", region, region_name, level,
// level_name, action, rule_set and severity (level 1 info, 2 warning, 3+
// critical), and the annotations summary, description (R with its 95 %
// credible interval, infectious-bed occupancy (ПЗК), the trend read from that
// interval, data date, flags, dashboard link), dashboard, alert_id,
// decision_id, kind and trend. startsAt is the decision time and endsAt
// alerts.resolve_after after sending, so the alert resolves by itself.
// Alertmanager routes by the region label (deploy/alertmanager). It merges
// alerts with equal labels: a second strengthen at the same level while the
// first alert still fires is not notified again before repeat_interval.
//
// Webhooks (alerts.webhooks): a signed POST of a JSON WebhookPayload to each
// webhook whose regions include the decision's region ("*": all).
//
// # Verifying a webhook
//
// Each request carries
//
//	X-Epiwatch-Timestamp: <Unix seconds of this attempt>
//	X-Epiwatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	Idempotency-Key: <alert_id>
//
// A receiver recomputes the HMAC over the raw body bytes exactly as received
// (before parsing), compares it in constant time, refuses timestamps more
// than a few minutes from its clock (replays), and then drops a payload whose
// idempotency_key it has processed before: retries and the rare re-send
// described below carry the same key and the same body. Verify does all but
// the last step for a Go receiver. The receiver answers 2xx once it has the
// alert; 5xx, 408 and 429 (with Retry-After) make the alerter retry, any other
// 4xx is recorded as failed for good.
//
// # Once per decision and channel
//
// Each delivery (decision × channel) is claimed in the KV bucket
// schemas.BucketAlertClaims under claimKey(alert_id), alert_id =
// decision_id + ":" + channel. The claim is created with Create
// (create-if-absent: of two alerters, or two deliveries of one decision, one
// wins) and moved pending → sent | failed with Update at the revision read
// (compare-and-set). A decision delivered again — a JetStream redelivery, a
// replay, a second replica, a restart — finds the claim final and sends
// nothing (it only republishes the final record if that is not yet known to
// be out). A round whose attempts all failed transiently releases the claim
// (state retry) and naks the decision, so JetStream redelivers it with
// backoff; after alerts.give_up_after the alert is recorded failed for good.
//
// The window, honestly: the claim is marked sent after the receiver
// answered. If the alerter dies between the receiver's 2xx and that KV
// write, or NATS refuses the write, the claim stays pending; once it is older
// than any delivery round can last, the next delivery of the decision takes
// it over and sends again with the same idempotency key and body. A receiver
// that deduplicates by idempotency_key (Alertmanager itself merges equal
// label sets) sees one alert; one that does not may see two. Nothing is sent
// twice outside that window.
//
// # Records and metrics
//
// Every outcome is published as a schemas.AlertRecord on
// epi.alerts.<region> (stream EPI_ALERTS; the ClickHouse sink lands it in
// epiwatch.alerts) with Nats-Msg-Id alert_id + ":sent" / ":failed", or
// alert_id + ":failed:<round>" for a round that will be retried. Counters
// epiwatch_alerts_sent_total{channel} and epiwatch_alerts_failed_total{channel}
// (failed rounds), the histogram epiwatch_alert_delivery_seconds{channel} (one
// round, retries included), epiwatch_alert_acks_total{source} and
// epiwatch_alert_escalations_total{channel}, on the registry given to New.
//
// # Daily digest
//
// Signal alarms (schemas.Signal on EPI_SIGNALS, early warnings that never
// change a level) do not page. Once a day per region the alerter sends one
// digest (kind digest) listing the data day's alarms — the signals of that
// region and day whose latest version (highest Version; of equal versions
// the later message) has Alarm set — largest Excess first (no Excess last),
// with the region's trend and P(R > 1) from its decision for that day, or
// else its latest decision. A day without alarms sends nothing.
//
// alerts.digest.trigger says when: "schedule" (default) sends, every day at
// alerts.digest.at (HH:MM) in alerts.digest.timezone, the digests of the
// previous local day; an alerter started after that time sends the day's
// digests at once, and a day not delivered everywhere is retried every
// alerts.max_backoff. "decision" sends the digest of data day D when the
// region's decision for D reaches the alerter (after alerts.max_decision_age
// is applied) — the mode for `epiwatch run --simulate`, whose simulated past
// days never meet a wall-clock schedule; signals of D published after that
// decision are then not in it. Either way the digest is built by reading
// EPI_SIGNALS (and, on schedule, EPI_DECISIONS) with an ordered consumer from
// alerts.digest.lookback before now, so nothing is kept in memory and a
// restart loses nothing. alerts.digest.enabled: false turns digests off.
//
// Channels are those of the region's alerts. Alertmanager gets
// alertname="EpiwatchDailyDigest" with the labels region, region_name, date,
// kind="digest" and severity="info" (route it to a non-paging receiver), the
// annotations summary, description (the ranked alarms), alert_id, digest_id,
// kind, trend, r_prob_above_1 and dashboard; webhooks get a signed
// DigestPayload (kind "digest"). Digests are neither acknowledged nor
// escalated.
//
// Each delivery is claimed like a decision alert, but under the key
// "digest.<region>.<YYYY-MM-DD>.<channel>" (region and channel escaped as in
// claimKey), with alert_id "digest:<region>:<YYYY-MM-DD>:<channel>" and
// decision_id (in the record) "digest:<region>:<YYYY-MM-DD>". The claim keeps
// the digest's content, so a takeover after a crash re-sends the same bytes
// with the same idempotency key. Outcomes are recorded on EPI_ALERTS with
// kind digest.
//
// # Acknowledgement and escalation
//
// Headquarters acknowledge a webhook alert with POST
// /v1/alerts/{alert_id}/ack (AckHandler), authenticated by the payload's
// ack_token (HMAC of the alert id with the webhook secret, see AckToken). An
// acknowledgement is stored under "ack." + claimKey(decision_id) and covers
// every alert of the decision. An active Alertmanager silence whose matchers
// match the decision's labels (e.g. region="KZ-75") counts too; it is read
// from GET /api/v2/silences when an alert becomes due and stored as an
// acknowledgement. That check is best effort: if Alertmanager does not
// answer, the alert escalates.
//
// Every alerts.escalate_check, alerts of webhooks with a second_url that are
// alerts.escalate_after past their first attempt and not acknowledged are
// re-sent once to second_url (alert_id + ":escalated", payload escalated:
// true), claimed like any delivery so several alerters escalate once, and
// recorded with Escalated set. A failed primary delivery is unacknowledged
// too, so it escalates.
package alerts
