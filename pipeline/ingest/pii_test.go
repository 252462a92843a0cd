package ingest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/piicorpus"
	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
	"github.com/epiwatch/epiwatch/schemas"
)

// The corpus — an IIN, a PIN, phones and an e-mail hidden in every string
// field of every event type, event_id included — posted over HTTP and
// imported from a file through the real pseudonymiser and embedded NATS:
// every event is rejected naming its field, and no stream message (subject,
// header or payload, events and dead letters alike) nor answer carries a
// hidden value. The clean events around them are accepted.
func TestPersonalDataNeverStored(t *testing.T) {
	s := streamtest.New(t)
	ctx := context.Background()
	in := realIngester(t, s, ingest.Config{MaxBodyBytes: 8 << 20, MaxBatch: 10000}, pseudo.KeyConfig{ID: "k1", Key: strings.Repeat("ab", 32)})

	c := piicorpus.Build()
	clean, corpus, fields := c.Clean, c.Events, c.Field

	// HTTP: the clean events, then the corpus.
	body := strings.Join(append(append([]string{}, clean...), corpus...), "\n")
	rec, sum := post(t, in.Handler(nil, nil), []byte(body), nil)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if sum.Accepted != len(clean) || sum.Rejected != len(corpus) {
		t.Fatalf("accepted %d, rejected %d; want %d and %d: %+v", sum.Accepted, sum.Rejected, len(clean), len(corpus), sum.Results[:len(clean)])
	}
	for i, r := range sum.Results[len(clean):] {
		if !strings.Contains(r.Reason, fields[i]+": looks like ") || !strings.Contains(r.Reason, "personal data is only accepted in person fields") {
			t.Errorf("%s: reason %q does not name the field", corpus[i], r.Reason)
		}
	}
	answer := rec.Body.String()

	// File import: the corpus again, under event_ids of its own where
	// event_id is not the field hiding the value.
	dir := t.TempDir()
	file := filepath.Join(dir, "corpus.ndjson")
	var imp []string
	for _, line := range corpus {
		imp = append(imp, strings.Replace(line, `"event_id":"`, `"event_id":"imp-`, 1))
	}
	if err := os.WriteFile(file, []byte(strings.Join(imp, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := in.Import(ctx, []string{file}, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != len(corpus) || res.Accepted != 0 {
		t.Fatalf("import: %+v", res.ImportProgress)
	}
	answer += strings.Join(res.Rejections, "\n")

	needles := piicorpus.Needles()
	for _, n := range needles {
		if strings.Contains(answer, n) {
			t.Errorf("the answers carry %q", n)
		}
	}
	dead := 0
	for _, name := range []string{schemas.StreamEvents, schemas.StreamDeadLetter} {
		st, err := s.JS.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if name == schemas.StreamDeadLetter {
			dead = int(info.State.Msgs)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := st.GetMsg(ctx, seq)
			if err != nil {
				t.Fatal(err)
			}
			all := m.Subject + "\n" + string(m.Data)
			for k, vs := range m.Header {
				all += "\n" + k + ": " + strings.Join(vs, ",")
			}
			for _, n := range needles {
				if strings.Contains(all, n) {
					t.Errorf("%s message %d carries %q: %s", name, seq, n, all)
				}
			}
		}
	}
	if dead < len(corpus) {
		t.Fatalf("%d dead letters, want at least %d", dead, len(corpus))
	}
}
