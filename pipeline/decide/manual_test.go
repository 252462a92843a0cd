package decide

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/schemas"
)

// TestManualLevel: a headquarters sets a level; it holds while the rule set
// keeps recommending (and recording where it would go), then expires and the
// rule set moves the level again, one step from where the manual level left
// it. A release ends it at once.
func TestManualLevel(t *testing.T) {
	srv := streamtest.New(t)
	cfg := testConfig(ModeData)
	d, _ := newDecider(t, srv.JS, cfg, nil, time.Now)
	start(t, d)
	const r = "KZ-75"
	// Days 0–2 strengthen: L1 → L2 → L3 → L4.
	publish(t, srv.JS, "", ind(r, 0, 1, 1.4, 60), ind(r, 1, 2, 1.4, 60), ind(r, 2, 3, 1.4, 60), ind(r, 3, 4, 1.4, 60))
	waitDecisions(t, srv.JS, 3)

	ctx := context.Background()
	set, err := d.SetManual(ctx, ManualRequest{Region: r, Level: 2, By: "hq-almaty", Reason: "schools must reopen", Until: day(6)})
	if err != nil {
		t.Fatal(err)
	}
	if set.Origin != schemas.OriginManual || set.LevelFrom != 4 || set.LevelTo != 2 || set.Action != "ease" || set.SetBy != "hq-almaty" ||
		set.ManualUntil != day(6) || !strings.Contains(set.Reason, "schools must reopen") {
		t.Errorf("the manual decision: %+v", set)
	}
	// Days 4–8 keep saying strengthen.
	publish(t, srv.JS, "", ind(r, 4, 5, 1.4, 60), ind(r, 5, 6, 1.4, 60), ind(r, 6, 7, 1.4, 60), ind(r, 7, 8, 1.4, 60), ind(r, 8, 9, 1.4, 60), ind(r, 9, 10, 1.4, 60))
	ds := waitDecisions(t, srv.JS, 3+1+6)
	byDay := map[schemas.Date]schemas.Decision{}
	for _, x := range ds {
		if x.Clause != ClauseManual {
			byDay[x.Date] = x
		}
	}
	for n := 3; n <= 6; n++ {
		x := byDay[day(n)]
		if x.Origin != schemas.OriginManual || x.LevelFrom != 2 || x.LevelTo != 2 || x.RuleLevelTo != 3 || x.Action != "strengthen" ||
			!strings.Contains(x.Reason, "held at the manual level L2") {
			t.Errorf("day %d under the manual level: origin %q %d→%d (rule: %d) %s %q", n, x.Origin, x.LevelFrom, x.LevelTo, x.RuleLevelTo, x.Action, x.Reason)
		}
	}
	if x := byDay[day(7)]; x.Origin != schemas.OriginRule || x.LevelFrom != 2 || x.LevelTo != 3 || !strings.Contains(x.Reason, "expired after "+day(6).String()) {
		t.Errorf("day 7, after the manual level expired: origin %q %d→%d %q", x.Origin, x.LevelFrom, x.LevelTo, x.Reason)
	}
	if p := audit(ds); len(p) > 0 {
		t.Errorf("audit: %v", p)
	}
	if rec := readLevel(t, srv.JS, r); rec.Manual != nil {
		t.Errorf("the expired manual level is still stored: %+v", rec.Manual)
	}

	// Release: the level stays, the rule set decides again.
	if _, err := d.SetManual(ctx, ManualRequest{Region: r, Level: 1, By: "hq", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	rel, err := d.ReleaseManual(ctx, r, "hq", "done")
	if err != nil || rel.LevelTo != 1 || rel.Origin != schemas.OriginManual || !strings.Contains(rel.Reason, "released by hq: done") {
		t.Fatalf("release: %+v %v", rel, err)
	}
	if rec := readLevel(t, srv.JS, r); rec.Manual != nil || rec.Level != 1 {
		t.Errorf("after the release: level %d, manual %+v", rec.Level, rec.Manual)
	}
	if _, err := d.ReleaseManual(ctx, r, "hq", "again"); !errors.Is(err, ErrBadRequest) {
		t.Errorf("releasing twice: %v, want ErrBadRequest", err)
	}
	// Bad requests are refused with the reason, nothing decided.
	for _, req := range []ManualRequest{
		{Region: "XX-1", Level: 2, By: "hq", Reason: "x"},
		{Region: r, Level: 9, By: "hq", Reason: "x"},
		{Region: r, Level: 2, By: "hq"},
	} {
		if _, err := d.SetManual(ctx, req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", req, err)
		}
	}
}

// authorizeAs is a LevelAuthorizer of one token value: pure request logic.
type authorizeAs struct{ token, who string }

func (a authorizeAs) AuthorizeLevel(r *http.Request, region string) (string, int, error) {
	if r.Header.Get("Authorization") != "Bearer "+a.token {
		return "", http.StatusUnauthorized, errors.New("unknown bearer token")
	}
	return a.who, 0, nil
}

// TestLevelAPI: the HTTP endpoint refuses calls without a valid token (and
// every call when no authorizer is configured), answers bad requests 400,
// and records who set the level.
func TestLevelAPI(t *testing.T) {
	srv := streamtest.New(t)
	d, _ := newDecider(t, srv.JS, testConfig(ModeSchedule), nil, time.Now)
	call := func(h http.Handler, method, path, token, body string) (int, string) {
		req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	open := d.LevelHandler(nil)
	if code, body := call(open, "POST", "/v1/levels/KZ-75", "anything", `{"level":2,"reason":"x"}`); code != http.StatusUnauthorized {
		t.Errorf("no authorizer: %d %s", code, body)
	}
	h := d.LevelHandler(authorizeAs{token: "s3cret", who: "token:hq-almaty"})
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
	}{
		{"POST", "/v1/levels/KZ-75", "", `{"level":2,"reason":"x"}`, http.StatusUnauthorized},
		{"POST", "/v1/levels/KZ-75", "wrong", `{"level":2,"reason":"x"}`, http.StatusUnauthorized},
		{"POST", "/v1/levels/KZ-75", "s3cret", `{"level":2}`, http.StatusBadRequest},
		{"POST", "/v1/levels/KZ-75", "s3cret", `{"level":2,"reason":"x","colour":"red"}`, http.StatusBadRequest},
		{"POST", "/v1/levels/KZ-75", "s3cret", `{"level":3,"reason":"hospital capacity"}`, http.StatusOK},
		{"GET", "/v1/levels/KZ-75", "s3cret", ``, http.StatusOK},
		{"DELETE", "/v1/levels/KZ-75?reason=over", "s3cret", ``, http.StatusOK},
		{"DELETE", "/v1/levels/KZ-75?reason=over", "s3cret", ``, http.StatusBadRequest},
	} {
		if code, body := call(h, tc.method, tc.path, tc.token, tc.body); code != tc.want {
			t.Errorf("%s %s (token %q) %s: %d %s, want %d", tc.method, tc.path, tc.token, tc.body, code, body, tc.want)
		}
	}
	ds := decisions(t, srv.JS)
	if len(ds) != 2 || ds[0].SetBy != "token:hq-almaty" || ds[0].LevelTo != 3 || !strings.Contains(ds[1].Reason, "released by token:hq-almaty: over") {
		b, _ := json.Marshal(ds)
		t.Errorf("decisions: %s", b)
	}
}
