package alerts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Webhook request headers.
const (
	// HeaderTimestamp is the send time in Unix seconds; it is part of the
	// signed message, so a receiver can refuse replays of old requests.
	HeaderTimestamp = "X-Epiwatch-Timestamp"
	// HeaderSignature is "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
	HeaderSignature = "X-Epiwatch-Signature"
	// HeaderIdempotencyKey repeats the payload's idempotency_key.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Sign returns the X-Epiwatch-Signature value of body sent at timestamp
// (Unix seconds, as in X-Epiwatch-Timestamp).
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a webhook request the way a receiver should: the signature
// must match the raw body (before any JSON parsing) and the timestamp must be
// within maxSkew of now, which bounds replays. The comparison is
// constant-time.
//
// Each request carries
//
//	X-Epiwatch-Timestamp: <Unix seconds of this attempt>
//	X-Epiwatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//	Idempotency-Key: <alert_id>
//
// A receiver recomputes the HMAC over the raw body bytes exactly as received
// (before parsing), compares it in constant time, refuses timestamps more than
// a few minutes from its clock (replays), and then drops a payload whose
// idempotency_key it has processed before: retries and the rare re-send
// described at deliverClaim carry the same key and the same body. Verify does
// all but the last step for a Go receiver. The receiver answers 2xx once it
// has the alert; 5xx, 408 and 429 (with Retry-After) make the alerter retry,
// any other 4xx is recorded as failed for good.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%s %q is not Unix seconds", HeaderTimestamp, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("%s is %s away from now (allowed %s)", HeaderTimestamp, d.Round(time.Second), maxSkew)
	}
	if !strings.HasPrefix(signature, "sha256=") {
		return errors.New(HeaderSignature + ": want sha256=<hex>")
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(secret, timestamp, body))) {
		return errors.New(HeaderSignature + " does not match the body")
	}
	return nil
}

// AckToken is the capability that acknowledges one alert: hex of
// HMAC-SHA256(secret, "ack." + alertID) with the webhook's secret. Webhook
// payloads carry it as ack_token; the acknowledgement endpoint recomputes it.
func AckToken(secret []byte, alertID string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("ack."))
	m.Write([]byte(alertID))
	return hex.EncodeToString(m.Sum(nil))
}
