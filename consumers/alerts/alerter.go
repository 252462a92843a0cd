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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Alerter consumes decisions and delivers alerts. Create it with New, run it
// with Run; serve AckHandler where headquarters can reach it.
type Alerter struct {
	cfg    Config
	bus    *stream.Bus
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
	kv   *stream.KV

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

// Deps are the alerter's connections and shared services.
type Deps struct {
	// Bus is the connection to JetStream; the streams and the claims bucket
	// must exist (Bus.Ensure).
	Bus *stream.Bus
	// Logger may be nil (discard).
	Logger *slog.Logger
	// Registerer receives the alert metrics; nil registers them on a
	// registry of their own.
	Registerer prometheus.Registerer
	// StreamMetrics, if not nil, records the consumer's delivery metrics.
	StreamMetrics *stream.Metrics
}

// New checks cfg, loads the webhook secrets and registers the metrics. It
// does no I/O on NATS: Run and AckHandler open what they need.
func New(cfg Config, deps Deps) (*Alerter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Bus == nil {
		return nil, errors.New("alerts: Deps.Bus is required")
	}
	log, reg := deps.Logger, deps.Registerer
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
		cfg: cfg, bus: deps.Bus, log: log.With("component", "alerts"), m: m, sm: deps.StreamMetrics,
		pub:     deps.Bus.Publisher(),
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

// bucket opens the claims bucket (created by Bus.Ensure) once.
func (a *Alerter) bucket(ctx context.Context) (*stream.KV, error) {
	a.kvMu.Lock()
	defer a.kvMu.Unlock()
	if a.kv != nil {
		return a.kv, nil
	}
	kv, err := a.bus.KV(ctx, schemas.BucketAlertClaims)
	if err != nil {
		return nil, err
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
	cons, err := a.bus.Consumer(ctx, a.ConsumerSpec(), a.log, a.sm)
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
func (a *Alerter) handle(ctx context.Context, m stream.Msg) error {
	var d schemas.Decision
	if err := json.Unmarshal(m.Data, &d); err != nil {
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
func keepInProgress(m stream.Msg, every time.Duration) (stop func()) {
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
//
// Alertmanager (alerts.alertmanager_url) gets POST {url}/api/v2/alerts with
// the labels alertname="EpiwatchRestrictionLevel", region, region_name, level,
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
// A webhook (alerts.webhooks) whose regions include the decision's region
// ("*": all) gets a signed POST of a JSON WebhookPayload (see Verify).
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
// once as far as the claim can tell; see deliverClaim for the
// one window where the receiver's idempotency check is what saves us.
func (a *Alerter) deliver(ctx context.Context, kv *stream.KV, d *schemas.Decision, kind string, t target, escalated bool) error {
	id := alertID(d.DecisionID, t.channel)
	if escalated {
		id = escalationID(id)
	}
	fresh := claim{AlertID: id, DecisionID: d.DecisionID, Region: d.Region, Channel: t.channel, Kind: kind, Escalation: escalated, Decision: *d}
	return a.deliverClaim(ctx, kv, fresh, t)
}

// deliverClaim claims, sends and records the alert fresh describes (a
// decision alert, its escalation, or a digest).
//
// Each delivery (decision × channel) is claimed in the KV bucket
// schemas.BucketAlertClaims under claimKey(alert_id), alert_id = decision_id +
// ":" + channel (see claim). A decision delivered again — a JetStream
// redelivery, a replay, a second replica, a restart — finds the claim final
// and sends nothing (it only republishes the final record if that is not yet
// known to be out). A round whose attempts all failed transiently releases the
// claim (state retry) and naks the decision, so JetStream redelivers it with
// backoff; after alerts.give_up_after the alert is recorded failed for good.
//
// The window, honestly: the claim is marked sent after the receiver answered.
// If the alerter dies between the receiver's 2xx and that KV write, or NATS
// refuses the write, the claim stays pending; once it is older than any
// delivery round can last, the next delivery of the decision takes it over and
// sends again with the same idempotency key and body. A receiver that
// deduplicates by idempotency_key (Alertmanager itself merges equal label
// sets) sees one alert; one that does not may see two. Nothing is sent twice
// outside that window.
func (a *Alerter) deliverClaim(ctx context.Context, kv *stream.KV, fresh claim, t target) error {
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
//
// Every outcome is published as a schemas.AlertRecord on epi.alerts.<region>
// (stream EPI_ALERTS; the ClickHouse sink lands it in epiwatch.alerts) with
// Nats-Msg-Id alert_id + ":sent" / ":failed", or alert_id + ":failed:<round>"
// for a round that will be retried.
func recordMsgID(r schemas.AlertRecord) string { return r.AlertID + ":" + r.Status }

// ensureRecorded publishes a final claim's record unless that is known to
// have happened, then notes it. A re-publish carries the same bytes and
// Nats-Msg-Id (and ClickHouse's alerts table replaces equal keys), so it is
// harmless.
func (a *Alerter) ensureRecorded(ctx context.Context, kv *stream.KV, c claim, rev uint64) error {
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
	h := stream.Header{}
	h.Set("Content-Type", "application/json")
	return a.pub.PublishSync(ctx, stream.Msg{Subject: schemas.AlertSubject(r.Region), ID: msgID, Data: data, Header: h})
}
