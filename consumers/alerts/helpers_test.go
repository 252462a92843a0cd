package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

func fp(v float64) *float64 { return &v }

// decision returns a strengthen decision for region that moved 2 → 3.
func decision(region, day string) schemas.Decision {
	return schemas.Decision{
		DecisionID: region + ":" + day + ":kz-2020:v1", Region: region, RegionName: "Almaty", Date: schemas.MustDate(day),
		DecidedAt: time.Now().UTC().Truncate(time.Second), RuleSet: "kz-2020", RuleSetVersion: "v1", Clause: "r_and_beds",
		Action: schemas.ActionStrengthen, Reason: "R 1.35 above 1.3 and ПЗК 72% above 70%",
		RMethod: "cori", RMean: fp(1.35), RQ025: fp(1.2), RQ975: fp(1.52), BedOccupancyPct: fp(72.5), DataAsOf: schemas.MustDate(day),
		LevelFrom: 2, LevelTo: 3, LevelFromName: "2 - moderate", LevelToName: "3 - high",
	}
}

// publish puts d on the decisions stream; msgID distinguishes re-publications
// of the same decision (a replay), which JetStream would otherwise drop.
func publish(t *testing.T, js jetstream.JetStream, d schemas.Decision, msgID string) {
	t.Helper()
	data, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := stream.NewBus(js).Publisher().PublishSync(ctx, stream.Msg{Subject: schemas.DecisionSubject(d.Region), ID: msgID, Data: data}); err != nil {
		t.Fatalf("publish decision: %v", err)
	}
}

// testConfig is fast: short timeouts and backoff, escalation off.
func testConfig() Config {
	c := DefaultConfig()
	c.Timeout = 2 * time.Second
	c.Backoff = 20 * time.Millisecond
	c.MaxBackoff = 100 * time.Millisecond
	c.EscalateAfter = 0
	c.DashboardURL = "http://grafana.test/d/epiwatch-region/region"
	return c
}

// running is an Alerter running in the background.
type running struct {
	*Alerter
	reg  *prometheus.Registry
	stop func()
}

// start runs an Alerter on its own NATS connection (a separate "process")
// until stop or the end of the test.
func start(t *testing.T, srv *streamtest.Server, cfg Config, tweak ...func(*Alerter)) *running {
	t.Helper()
	bus := srv.Open("alerter")
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := New(cfg, Deps{Bus: bus, Logger: log, Registerer: reg, StreamMetrics: stream.NewMetrics(reg)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, f := range tweak {
		f(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return &running{Alerter: a, reg: reg, stop: stop}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// receiver is a headquarters endpoint that records what it gets and answers
// with the scripted statuses first, then 200.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	script   []int
	reqs     []received
	arrivals chan struct{}
}

type received struct {
	body   []byte
	header http.Header
	at     time.Time
	status int
}

func newReceiver(t *testing.T, script ...int) *receiver {
	r := &receiver{script: script, arrivals: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusOK
		if len(r.script) > 0 {
			status, r.script = r.script[0], r.script[1:]
		}
		r.reqs = append(r.reqs, received{body: body, header: req.Header.Clone(), at: time.Now(), status: status})
		r.mu.Unlock()
		w.WriteHeader(status)
		r.arrivals <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

// delivered returns the requests answered 2xx.
func (r *receiver) delivered() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []received
	for _, q := range r.reqs {
		if q.status < 300 {
			out = append(out, q)
		}
	}
	return out
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitIdle waits until the alerts consumer has settled every decision on the
// stream: all delivered and none awaiting an ack.
func waitIdle(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	waitFor(t, 10*time.Second, "the alerts consumer to settle every decision", func() bool {
		st, err := js.Stream(ctx, schemas.StreamDecisions)
		if err != nil {
			return false
		}
		si, err := st.Info(ctx)
		if err != nil {
			return false
		}
		c, err := js.Consumer(ctx, schemas.StreamDecisions, schemas.ConsumerAlerts)
		if err != nil {
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return false
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0 && ci.AckFloor.Stream >= si.State.LastSeq
	})
}

// records returns every alert record on EPI_ALERTS.
func records(t *testing.T, js jetstream.JetStream) []schemas.AlertRecord {
	t.Helper()
	var out []schemas.AlertRecord
	for _, m := range streamtest.Messages(t, js, schemas.StreamAlerts) {
		var r schemas.AlertRecord
		if err := json.Unmarshal(m.Data, &r); err != nil {
			t.Fatalf("record %d: %v", m.Seq, err)
		}
		out = append(out, r)
	}
	return out
}

func recordsOf(rs []schemas.AlertRecord, alertID string) []schemas.AlertRecord {
	var out []schemas.AlertRecord
	for _, r := range rs {
		if r.AlertID == alertID {
			out = append(out, r)
		}
	}
	return out
}

// counter reads a counter or histogram count of the registry.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if h := m.GetHistogram(); h != nil {
						return float64(h.GetSampleCount())
					}
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// claimOf reads the claim of an alert.
func claimOf(t *testing.T, js jetstream.JetStream, alertID string) (claim, bool) {
	t.Helper()
	ctx := context.Background()
	kv, err := js.KeyValue(ctx, schemas.BucketAlertClaims)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, claimKey(alertID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return claim{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var c claim
	if err := json.Unmarshal(e.Value(), &c); err != nil {
		t.Fatal(err)
	}
	return c, true
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
