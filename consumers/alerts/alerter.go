package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Alerter consumes decisions and delivers alerts. Create it with New, run it
// with Run; serve AckHandler where headquarters can reach it.
type Alerter struct {
	cfg    Config
	js     jetstream.JetStream
	log    *slog.Logger
	m      *metrics
	sm     *stream.Metrics
	pub    *stream.Publisher
	client *http.Client
	hooks  map[string]*hook // by channel name
	order  []*hook          // in configuration order
	owner  string           // this instance, in pending claims
	now    func() time.Time

	kvMu sync.Mutex
	kv   jetstream.KeyValue

	// ackWait is the consumer's AckWait; the handler keeps a message in
	// progress every ackWait/3 while it delivers.
	ackWait time.Duration
	// noClaims breaks the protocol on purpose (the negative control of the
	// exactly-once test): deliver without claiming.
	noClaims bool
}

// hook is a configured webhook with its secret loaded.
type hook struct {
	Webhook
	secret  []byte
	channel string
}

// New checks cfg, loads the webhook secrets and registers the metrics on
// reg. sm (the consumer metrics of the process) may be nil. It does no I/O on
// NATS: Run and AckHandler open what they need.
func New(cfg Config, js jetstream.JetStream, log *slog.Logger, reg prometheus.Registerer, sm *stream.Metrics) (*Alerter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register alert metrics: %w", err)
	}
	a := &Alerter{
		cfg: cfg, js: js, log: log.With("component", "alerts"), m: m, sm: sm,
		pub:     stream.NewPublisher(js),
		client:  &http.Client{Timeout: cfg.Timeout},
		hooks:   map[string]*hook{},
		owner:   instanceID(),
		now:     time.Now,
		ackWait: 30 * time.Second,
	}
	for _, w := range cfg.Webhooks {
		sec, err := w.secret()
		if err != nil {
			return nil, err
		}
		h := &hook{Webhook: w, secret: sec, channel: "webhook:" + w.Name}
		a.hooks[h.channel] = h
		a.order = append(a.order, h)
	}
	if cfg.AlertmanagerURL == "" && len(cfg.Webhooks) == 0 {
		a.log.Warn("no alert channel configured: decisions are consumed but nobody is told; set alerts.alertmanager_url or alerts.webhooks")
	}
	return a, nil
}

func instanceID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bucket opens the claims bucket (created by stream.EnsureStreams) once.
func (a *Alerter) bucket(ctx context.Context) (jetstream.KeyValue, error) {
	a.kvMu.Lock()
	defer a.kvMu.Unlock()
	if a.kv != nil {
		return a.kv, nil
	}
	kv, err := a.js.KeyValue(ctx, schemas.BucketAlertClaims)
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s (stream.EnsureStreams creates it): %w", schemas.BucketAlertClaims, err)
	}
	a.kv = kv
	return kv, nil
}

// ConsumerSpec is the durable consumer of decisions. One message at a time:
// decisions are few, and a fetched message waiting behind a slow delivery
// would otherwise reach its AckWait.
func (a *Alerter) ConsumerSpec() stream.ConsumerSpec {
	return stream.ConsumerSpec{
		Stream:         schemas.StreamDecisions,
		Durable:        schemas.ConsumerAlerts,
		Description:    "restriction decisions → Alertmanager and headquarters webhooks",
		FilterSubjects: []string{schemas.SubjectDecisions + ".>"},
		Stage:          "alerts",
		BatchSize:      1,
		MaxWait:        time.Second,
		AckWait:        a.ackWait,
		RetryMin:       a.cfg.Backoff,
		RetryMax:       5 * time.Minute,
	}
}

// Run consumes decisions and, when escalation is on, looks for
// unacknowledged alerts every EscalateCheck, until ctx ends. A delivery in
// flight at cancel finishes its current HTTP attempt and records the outcome.
func (a *Alerter) Run(ctx context.Context) error {
	if _, err := a.bucket(ctx); err != nil {
		return err
	}
	cons, err := stream.NewConsumer(ctx, a.js, a.ConsumerSpec(), a.log, a.sm)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if a.cfg.EscalateAfter > 0 {
		wg.Go(func() { a.escalateLoop(ctx) })
	}
	if a.cfg.Digest.Enabled && a.cfg.Digest.Trigger == DigestOnSchedule {
		wg.Go(func() { a.digestLoop(ctx) })
	}
	err = cons.Run(ctx, a.handle)
	wg.Wait()
	return err
}

// target is one channel a decision goes to.
type target struct {
	channel string
	hook    *hook // nil: Alertmanager
}

func (a *Alerter) targets(region string) []target {
	var ts []target
	if a.cfg.AlertmanagerURL != "" {
		ts = append(ts, target{channel: ChannelAlertmanager})
	}
	for _, h := range a.order {
		if h.covers(region) {
			ts = append(ts, target{channel: h.channel, hook: h})
		}
	}
	return ts
}

// handle delivers one decision to every channel of its region, in parallel.
// Malformed decisions are dead-lettered; a channel that could not be reached
// makes the whole message be redelivered later, when the channels already
// done find their claims final and send nothing.
func (a *Alerter) handle(ctx context.Context, m jetstream.Msg) error {
	var d schemas.Decision
	if err := json.Unmarshal(m.Data(), &d); err != nil {
		return stream.Permanent(fmt.Errorf("decode decision: %w", err))
	}
	if d.DecisionID == "" || d.Region == "" {
		return stream.Permanent(errors.New("decision lacks decision_id or region"))
	}
	kind := kindOf(&d)
	digest := a.cfg.Digest.Enabled && a.cfg.Digest.Trigger == DigestOnDecision
	if kind == "" && !digest {
		return nil
	}
	if age := a.now().Sub(d.DecidedAt); a.cfg.MaxDecisionAge > 0 && !d.DecidedAt.IsZero() && age > a.cfg.MaxDecisionAge {
		a.log.Warn("decision too old to alert on; skipped", "decision_id", d.DecisionID, "age", age.Round(time.Minute), "max_decision_age", a.cfg.MaxDecisionAge)
		return nil
	}
	ts := a.targets(d.Region)
	if len(ts) == 0 {
		a.log.Debug("no alert channel for region", "region", d.Region, "decision_id", d.DecisionID)
		return nil
	}
	kv, err := a.bucket(ctx)
	if err != nil {
		return err
	}
	stop := keepInProgress(m, a.ackWait/3)
	defer stop()
	var errs []error
	if kind != "" {
		errs = make([]error, len(ts))
		var wg sync.WaitGroup
		for i, t := range ts {
			wg.Go(func() { errs[i] = a.deliver(ctx, kv, &d, kind, t, false) })
		}
		wg.Wait()
	}
	if digest {
		// The digest of the decision's data day; a redelivery finds its
		// claims final and sends nothing.
		if err := a.digestOnDecision(ctx, &d); err != nil {
			errs = append(errs, fmt.Errorf("digest of %s for %s: %w", d.Region, d.Date, err))
		}
	}
	return errors.Join(errs...)
}

// keepInProgress tells JetStream every interval that m is still being worked
// on, so a delivery with retries is not redelivered meanwhile.
func keepInProgress(m jetstream.Msg, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(every, 100*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = m.InProgress()
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// stale is how old another alerter's pending claim must be before it is
// taken over: longer than any delivery round can last.
func (a *Alerter) stale() time.Duration {
	round := time.Duration(a.cfg.MaxAttempts) * (a.cfg.Timeout + a.cfg.MaxBackoff)
	return max(round, a.ackWait) + 10*time.Second
}

// request builds the HTTP request of one alert.
func (a *Alerter) request(d *schemas.Decision, kind, id string, t target, escalated bool) (request, error) {
	if t.hook == nil {
		body, err := json.Marshal([]amAlert{alertmanagerAlert(d, kind, id, a.cfg.DashboardURL, a.now(), a.cfg.ResolveAfter)})
		if err != nil {
			return request{}, err
		}
		return request{url: strings.TrimRight(a.cfg.AlertmanagerURL, "/") + "/api/v2/alerts", body: body}, nil
	}
	h := t.hook
	body, err := json.Marshal(webhookPayload(d, kind, id, escalated, a.cfg.DashboardURL, a.cfg.AckBaseURL, h.secret))
	if err != nil {
		return request{}, err
	}
	url := h.URL
	if escalated {
		url = h.SecondURL
	}
	return request{url: url, body: body, sign: func(hd http.Header, now time.Time) {
		ts := strconv.FormatInt(now.Unix(), 10)
		hd.Set(HeaderTimestamp, ts)
		hd.Set(HeaderSignature, Sign(h.secret, ts, body))
		hd.Set(HeaderIdempotencyKey, id)
	}}, nil
}

// deliver sends one alert (decision × channel, or its escalation) at most
// once as far as the claim can tell; see the package documentation for the
// one window where the receiver's idempotency check is what saves us.
func (a *Alerter) deliver(ctx context.Context, kv jetstream.KeyValue, d *schemas.Decision, kind string, t target, escalated bool) error {
	id := alertID(d.DecisionID, t.channel)
	if escalated {
		id = escalationID(id)
	}
	fresh := claim{AlertID: id, DecisionID: d.DecisionID, Region: d.Region, Channel: t.channel, Kind: kind, Escalation: escalated, Decision: *d}
	return a.deliverClaim(ctx, kv, fresh, t)
}

// deliverClaim claims, sends and records the alert fresh describes (a
// decision alert, its escalation, or a digest).
func (a *Alerter) deliverClaim(ctx context.Context, kv jetstream.KeyValue, fresh claim, t target) error {
	id, kind, escalated := fresh.AlertID, fresh.Kind, fresh.Escalation
	log := a.log.With("alert_id", id, "region", fresh.Region)
	// Claim writes after the attempt must happen even when shutdown began.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()

	var c claim
	var rev uint64
	if a.noClaims {
		c = fresh
		c.ClaimedAt = a.now()
	} else {
		var mine bool
		var err error
		c, rev, mine, err = a.acquire(ctx, kv, fresh, a.stale())
		if err != nil {
			return err
		}
		if !mine {
			return a.ensureRecorded(wctx, kv, c, rev)
		}
	}

	var req request
	var err error
	if c.Kind == KindDigest {
		if c.Digest == nil {
			c.Digest = fresh.Digest
		}
		req, err = a.digestRequest(c.Digest, id, t)
	} else {
		d := &fresh.Decision
		req, err = a.request(d, kind, id, t, escalated)
	}
	if err != nil {
		return stream.Permanent(fmt.Errorf("build alert %s: %w", id, err))
	}
	start := a.now()
	o := a.post(ctx, req)
	a.m.duration.WithLabelValues(t.channel).Observe(a.now().Sub(start).Seconds())
	c.Attempts += o.attempts
	c.Rounds++
	c.Owner = ""
	rec := schemas.AlertRecord{
		AlertID: id, DecisionID: c.DecisionID, Region: c.Region, Channel: t.channel, Kind: kind,
		Attempts: c.Attempts, At: a.now().UTC(), Escalated: escalated,
	}
	giveUp := a.cfg.GiveUpAfter > 0 && a.now().Sub(c.ClaimedAt) >= a.cfg.GiveUpAfter
	switch {
	case o.err == nil:
		rec.Status, c.State = schemas.AlertSent, stateSent
		a.m.sent.WithLabelValues(t.channel).Inc()
		if escalated {
			a.m.escal.WithLabelValues(t.channel).Inc()
		}
		log.Info("alert delivered", "channel", t.channel, "kind", kind, "attempts", c.Attempts, "escalated", escalated)
	case o.permanent || giveUp:
		rec.Status, rec.Error, c.State = schemas.AlertFailed, o.err.Error(), stateFailed
		if giveUp && !o.permanent {
			rec.Error += fmt.Sprintf("; giving up %s after the first attempt", a.cfg.GiveUpAfter)
		}
		a.m.failed.WithLabelValues(t.channel).Inc()
		log.Error("alert delivery failed for good", "channel", t.channel, "attempts", c.Attempts, "err", o.err)
	default:
		// Transient: record this round, free the claim, and let JetStream
		// redeliver the decision (the escalation loop retries escalations).
		rec.Status, rec.Error, c.State = schemas.AlertFailed, o.err.Error()+"; will retry", stateRetry
		a.m.failed.WithLabelValues(t.channel).Inc()
		log.Warn("alert delivery failed; will retry", "channel", t.channel, "attempts", c.Attempts, "err", o.err)
		if _, err := a.publishRecord(wctx, rec, id+":failed:"+strconv.Itoa(c.Rounds)); err != nil {
			log.Warn("record of a failed round not published", "err", err)
		}
		if !a.noClaims {
			if _, err := a.store(wctx, kv, c, rev); err != nil {
				return errors.Join(o.err, err)
			}
		}
		return fmt.Errorf("deliver %s: %w", id, o.err)
	}
	c.Record = &rec
	if a.noClaims {
		_, err := a.publishRecord(wctx, rec, recordMsgID(rec))
		return err
	}
	// Mark final before recording: from here on nothing re-sends it.
	rev, err = a.store(wctx, kv, c, rev)
	if err != nil {
		return err
	}
	return a.ensureRecorded(wctx, kv, c, rev)
}

// recordMsgID is the Nats-Msg-Id of a final record.
func recordMsgID(r schemas.AlertRecord) string { return r.AlertID + ":" + r.Status }

// ensureRecorded publishes a final claim's record unless that is known to
// have happened, then notes it. A re-publish carries the same bytes and
// Nats-Msg-Id (and ClickHouse's alerts table replaces equal keys), so it is
// harmless.
func (a *Alerter) ensureRecorded(ctx context.Context, kv jetstream.KeyValue, c claim, rev uint64) error {
	if c.Record == nil || c.Recorded {
		return nil
	}
	if _, err := a.publishRecord(ctx, *c.Record, recordMsgID(*c.Record)); err != nil {
		return err
	}
	c.Recorded = true
	if _, err := a.store(ctx, kv, c, rev); err != nil {
		// The record is out; at worst it is published once more.
		a.log.Warn("could not note the alert record as published", "alert_id", c.AlertID, "err", err)
	}
	return nil
}

func (a *Alerter) publishRecord(ctx context.Context, r schemas.AlertRecord, msgID string) (stream.PubResult, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return stream.PubResult{}, err
	}
	h := nats.Header{}
	h.Set("Content-Type", "application/json")
	return a.pub.PublishSync(ctx, stream.Msg{Subject: schemas.AlertSubject(r.Region), ID: msgID, Data: data, Header: h})
}
