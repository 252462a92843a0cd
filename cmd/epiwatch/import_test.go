package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/app"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// eventsStored is the number of messages in the running pipeline's events
// stream.
func eventsStored(t *testing.T, natsURL string) uint64 {
	t.Helper()
	nc, js, err := stream.Connect(natsURL, "test-count")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, schemas.StreamEvents)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestImportFromAnotherDirectoryKeepsOnePseudonym runs `epiwatch import`
// from another working directory against a running single-node pipeline
// that generated its own pseudonym key. Without a key of its own, import
// would generate a second key under the same id and split every person into
// two pseudonyms; it must refuse, name both key files, leave no key behind
// and publish nothing. Given the pipeline's data directory, it links the
// person to the pipeline's own pseudonym.
func TestImportFromAnotherDirectoryKeepsOnePseudonym(t *testing.T) {
	p := startPipeline(t, "pseudonym:\n  key_id: k1\n")
	dataDir := filepath.Dir(p.cfgFile) // the config's data_dir
	pipelineKey := filepath.Join(dataDir, app.GeneratedKeyFile)
	if _, err := os.Stat(pipelineKey); err != nil {
		t.Fatalf("the pipeline generated no key: %v", err)
	}
	// One case through the API: the pipeline's pseudonym of the person.
	caseJSON := `{"event_id":"ki-case-1","type":"case","region":"KZ-75","source":"lis-almaty","person":{"national_id":"900101300017"},"report_date":"2021-07-01"}`
	if code, body := p.post(t, []byte(caseJSON+"\n")); code != 200 {
		t.Fatalf("post: %d %s", code, body)
	}

	other := t.TempDir()
	file := filepath.Join(other, "tests.ndjson")
	testJSON := `{"event_id":"ki-test-1","type":"lab_test","region":"KZ-75","source":"lis-almaty","person":{"national_id":"900101300017"},"sample_date":"2021-07-01","result_date":"2021-07-02","test_kind":"pcr","result":"positive","lab":"NCL"}`
	if err := os.WriteFile(file, []byte(testJSON+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	natsListen := strings.TrimPrefix(p.natsURL, "nats://")
	before := eventsStored(t, p.natsURL)

	t.Chdir(other) // as a user would: no config, no data folder here
	var out, errb bytes.Buffer
	code := realMain(context.Background(), []string{"import", "--nats-listen", natsListen, "--log-level", "warn", file}, &out, &errb)
	if code != 2 {
		t.Fatalf("import with its own generated key exited %d, want 2:\n%s%s", code, out.String(), errb.String())
	}
	msg := errb.String()
	for _, want := range []string{pipelineKey, filepath.Join(other, "data", app.GeneratedKeyFile), "two pseudonyms", "--data-dir"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the refusal does not name %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(other, "data", app.GeneratedKeyFile)); !os.IsNotExist(err) {
		t.Errorf("the refused import left its generated key behind (stat: %v)", err)
	}
	if after := eventsStored(t, p.natsURL); after != before {
		t.Errorf("the refused import published: %d → %d events", before, after)
	}

	// With the pipeline's data directory it uses the pipeline's key.
	out.Reset()
	errb.Reset()
	if code := realMain(context.Background(), []string{"import", "--nats-listen", natsListen, "--data-dir", dataDir, file}, &out, &errb); code != 0 {
		t.Fatalf("import with --data-dir exited %d:\n%s%s", code, out.String(), errb.String())
	}
	p.waitCount(t, "SELECT count() FROM `"+p.db.Name+"`.events", 2, 30*time.Second)
	if n := p.db.Count(t, "SELECT uniqExact(person_pseudonym) FROM `"+p.db.Name+"`.events WHERE event_id IN ('ki-case-1', 'ki-test-1')"); n != 1 {
		t.Errorf("the person has %d pseudonyms, want 1", n)
	}
}

// TestImportExitStatus: rejected rows make import exit 3 (documented in
// --help) while every valid row lands; --allow-rejects exits 0.
func TestImportExitStatus(t *testing.T) {
	p := startPipeline(t, "")
	dir := t.TempDir()
	lines := []string{
		`{"event_id":"ix-1","type":"case","region":"KZ-75","source":"s","person":{"national_id":"900101300017"},"report_date":"2021-07-01"}`,
		`{"event_id":"ix-bad","type":"case","region":"XX-99","source":"s","person":{"national_id":"900101300017"},"report_date":"2021-07-01"}`,
		`{"event_id":"ix-2","type":"case","region":"KZ-71","source":"s","person":{"national_id":"850505400018"},"report_date":"2021-07-02"}`,
	}
	file := filepath.Join(dir, "cases.ndjson")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"import", "--config", p.cfgFile, file}, app.ExitRejected},
		{[]string{"import", "--config", p.cfgFile, "--allow-rejects", file}, 0},
	} {
		var out, errb bytes.Buffer
		if code := realMain(context.Background(), tt.args, &out, &errb); code != tt.want {
			t.Errorf("%v exited %d, want %d:\n%s%s", tt.args, code, tt.want, out.String(), errb.String())
		}
		if !strings.Contains(errb.String(), "rejected: "+file+":2: ") || strings.Contains(errb.String(), file+":1:") {
			t.Errorf("%v: the rejection's reason is not printed:\n%s", tt.args, errb.String())
		}
	}
	p.waitCount(t, "SELECT count() FROM `"+p.db.Name+"`.events", 2, 30*time.Second)
}
