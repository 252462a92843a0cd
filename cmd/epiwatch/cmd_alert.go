package main

import (
	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/app"
)

func newAlertCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "alert",
		Short: "Run the alerter alone (decisions → Alertmanager and signed headquarters webhooks)",
		Long: `Consumes the decisions stream and alerts regional headquarters on every decision that
changed a region's restriction level and on every strengthen recommendation: to Alertmanager
(alerts.alertmanager_url, routed by the region label) and to the signed webhooks of
alerts.webhooks (HMAC-SHA256 in X-Epiwatch-Signature; see 'go doc ./consumers/alerts').
Each alert is claimed in JetStream KV before it is sent, so it goes out once per decision and
channel across redeliveries, restarts and replicas; every outcome is recorded on the alerts
stream (ClickHouse table epiwatch.alerts).

Webhook alerts not acknowledged within alerts.escalate_after (POST
/v1/alerts/{alert_id}/ack with the payload's ack_token, or an Alertmanager silence on the
region) are re-sent once to the webhook's second_url.

Serves /metrics, /healthz, /readyz and the acknowledgement endpoint /v1/alerts/ on
metrics.addr; expose only /v1/alerts/ to headquarters (e.g. through a reverse proxy) and set
alerts.ack_base_url to the public address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return app.RunAlert(cmd.Context(), envOf(cmd)) },
	}
}
