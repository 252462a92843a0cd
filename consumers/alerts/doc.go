// Package alerts tells regional headquarters about restriction decisions. It
// consumes schemas.Decision (durable consumer schemas.ConsumerAlerts) and
// alerts on every decision that changed the region's level (kind level_change)
// and on every strengthen recommendation that did not (kind strengthen); keep
// and ease without a change send nothing. It sends through Alertmanager and
// signed webhooks, once per decision and channel (a claim in a KV bucket),
// publishes every outcome as a schemas.AlertRecord, sends a daily digest of
// signal alarms and escalates unacknowledged webhook alerts.
//
// Each part is explained beside its code: Alerter.request (what each channel
// gets), Verify (what a webhook receiver checks), deliverClaim (once per
// decision, and the one window where a re-send is possible), digestLoop and
// digestOf (the digest), escalate (acknowledgement and escalation).
package alerts
