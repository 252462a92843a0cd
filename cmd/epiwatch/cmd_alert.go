package main

import (
	"context"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/consumers/alerts"
)

// alertComponent builds the alerter from alerts.* and returns it with its
// acknowledgement handler (POST /v1/alerts/{alert_id}/ack), which the caller
// mounts under /v1/alerts/ on a listener headquarters can reach.
func (a *app) alertComponent() (component, http.Handler, error) {
	al, err := alerts.New(a.cfg.Alerts, a.js, a.log, a.reg, a.sm)
	if err != nil {
		return component{}, nil, &exitError{2, err}
	}
	c := a.cfg.Alerts
	a.log.Info("alerts configured", "alertmanager_url", c.AlertmanagerURL, "webhooks", len(c.Webhooks),
		"escalate_after", c.EscalateAfter, "max_decision_age", c.MaxDecisionAge,
		"digest", c.Digest.Enabled, "digest_trigger", c.Digest.Trigger, "digest_at", c.Digest.At, "digest_timezone", c.Digest.Timezone)
	return component{"alerts", al.Run}, al.AckHandler(), nil
}

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
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withNATS(cmd, "alert", func(a *app) error {
				c, ack, err := a.alertComponent()
				if err != nil {
					return err
				}
				srv := a.metricsServer(nil)
				mux := http.NewServeMux()
				mux.Handle("/v1/alerts/", ack)
				mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
					if err := a.ready(r.Context()); err != nil {
						http.Error(w, err.Error(), http.StatusServiceUnavailable)
						return
					}
					_, _ = w.Write([]byte("ok\n"))
				})
				mux.Handle("/", srv.Handler)
				srv.Handler = mux
				return runAll(cmd.Context(), []component{c, {"http", func(ctx context.Context) error { return serveHTTP(ctx, srv, a.log, "", "") }}})
			})
		},
	}
}
