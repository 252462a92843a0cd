package alerts

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// HeaderAckToken carries the ack token when an Authorization header is not
// convenient; "Authorization: Bearer <ack_token>" works too.
const HeaderAckToken = "X-Epiwatch-Ack-Token"

// AckHandler serves POST /v1/alerts/{alert_id}/ack: headquarters acknowledge
// a webhook alert, which stops its escalation. The request proves it saw the
// alert with the alert's ack_token (from the payload) as a bearer token; an
// optional JSON body {"by": "duty officer name"} is kept with the
// acknowledgement. Answers: 200 acknowledged (or already acknowledged — it is
// idempotent), 401 no token, 403 wrong token, 404 unknown alert, 503 JetStream
// unavailable (retry). Acknowledging any alert of a decision acknowledges the
// decision. Alertmanager alerts are acknowledged with a silence instead.
//
// Mount it under /v1/alerts/ on a listener headquarters can reach.
func (a *Alerter) AckHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/alerts/{alert_id}/ack", a.serveAck)
	return mux
}

func (a *Alerter) serveAck(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("alert_id")
	token := r.Header.Get(HeaderAckToken)
	if t, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = strings.TrimSpace(t)
	}
	if token == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing ack token: send \"Authorization: Bearer <ack_token>\" with the ack_token of the alert payload"})
		return
	}
	var body struct {
		By string `json:"by"`
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "read body: " + err.Error()})
		return
	}
	if len(strings.TrimSpace(string(raw))) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body must be empty or JSON {\"by\": \"...\"}: " + err.Error()})
			return
		}
	}
	ctx := r.Context()
	kv, err := a.bucket(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "alert store unavailable; retry"})
		return
	}
	e, err := kv.Get(ctx, claimKey(id))
	if errors.Is(err, stream.ErrKeyNotFound) { // absent, deleted, or not a valid key
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown alert id " + id})
		return
	}
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "alert store unavailable; retry"})
		return
	}
	var c claim
	if err := json.Unmarshal(e.Value, &c); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "stored alert unreadable"})
		return
	}
	h := a.hooks[c.Channel]
	if h == nil {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "alert " + id + " was not sent to a configured webhook; acknowledge Alertmanager alerts with a silence"})
		return
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(AckToken(h.secret, id))) != 1 {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "ack token does not match alert " + id})
		return
	}
	by := body.By
	if by == "" {
		by = c.Channel + " receiver"
	}
	stored, err := a.recordAck(ctx, kv, ack{DecisionID: c.DecisionID, AlertID: id, By: by, At: a.now().UTC()}, "endpoint")
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "could not store the acknowledgement; retry"})
		return
	}
	status := "acknowledged"
	if !stored {
		status = "already_acknowledged"
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": status, "alert_id": id, "decision_id": c.DecisionID})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
