package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/internal/testkit/piicorpus"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/stream"
)

// TestPersonalDataNowhereEndToEnd posts the corpus of personal data hidden
// in every string field of every event type (internal/testkit/piicorpus),
// beside one clean event of each type, to `epiwatch run`: every corpus event
// is rejected naming its field, and afterwards none of the hidden values is
// in any stream (subjects, headers, payloads), key-value bucket, ClickHouse
// table, log line of the run, or file under the NATS and ClickHouse data
// directories. A clean value that is stored ("KDL Olymp", a lab) is found
// in the same places: the search can see what is there.
func TestPersonalDataNowhereEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("a pipeline end to end")
	}
	c := piicorpus.Build()
	p := startPipeline(t, "")
	body := strings.Join(append(append([]string{}, c.Clean...), c.Events...), "\n") + "\n"
	code, ans := p.post(t, []byte(body))
	var sum ingest.Summary
	if err := json.Unmarshal(ans, &sum); code != 200 || err != nil || sum.Accepted != len(c.Clean) || sum.Rejected != len(c.Events) {
		t.Fatalf("post: %d, accepted %d of %d, rejected %d of %d", code, sum.Accepted, len(c.Clean), sum.Rejected, len(c.Events))
	}
	for i, r := range sum.Results[len(c.Clean):] {
		if !strings.Contains(r.Reason, c.Field[i]+": looks like ") {
			t.Errorf("%s: reason %q does not name the field", c.Events[i], r.Reason)
		}
	}
	db := "`" + p.db.Name + "`"
	p.waitCount(t, "SELECT count() FROM "+db+".events_v2_store", uint64(len(c.Clean)), 60*time.Second)
	p.waitCount(t, "SELECT toUInt64(count() > 0) FROM "+db+".indicators_latest", 1, 60*time.Second)

	needles := piicorpus.Needles()
	const stored = "KDL Olymp"
	find := func(where string, data []byte, wantStored bool) bool {
		for _, n := range needles {
			if bytes.Contains(data, []byte(n)) {
				t.Errorf("%s holds %q", where, n)
			}
		}
		return bytes.Contains(data, []byte(stored))
	}

	// Streams and buckets, while NATS runs.
	nc, js, err := stream.Connect(p.natsURL, "pii-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	seen := false
	for name := range js.StreamNames(context.Background()).Name() {
		for _, m := range streamContents(t, js, name) { // header and payload
			seen = find("stream "+name, []byte(m), true) || seen
		}
	}
	if !seen {
		t.Errorf("no stream holds %q: the search sees nothing", stored)
	}
	assertNoValue(t, js, needles...)
	for name := range js.StreamNames(context.Background()).Name() {
		st, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(context.Background(), jetstream.WithSubjectFilter(">"))
		if err != nil {
			t.Fatal(err)
		}
		for subj := range info.State.Subjects {
			find("subject "+subj+" of "+name, []byte(subj), false)
		}
	}

	// ClickHouse tables: every row of every table of the database.
	seen = false
	rows := p.rows(t, fmt.Sprintf("SELECT name FROM system.tables WHERE database = '%s' AND engine NOT LIKE '%%View'", p.db.Name))
	for _, table := range rows {
		seen = find("table "+table, tableText(t, p, table), true) || seen
	}
	if !seen {
		t.Errorf("no ClickHouse table holds %q: the search sees nothing", stored)
	}
	var dataPath string
	if err := p.db.Conn.QueryRow(context.Background(), fmt.Sprintf("SELECT data_path FROM system.tables WHERE database = '%s' AND name = 'events_v2_store'", p.db.Name)).Scan(&dataPath); err != nil {
		t.Fatal(err)
	}

	// The run's logs, then its data directory (the NATS store) once
	// stopped, and ClickHouse's data and log directories.
	if p.stop() != 0 {
		t.Fatal("epiwatch run did not stop cleanly")
	}
	find("the run's log", []byte(p.logs.String()), false)
	if !grepDir(t, filepath.Dir(p.cfgFile), find) {
		t.Errorf("no file of the run's data directory holds %q: the search sees nothing", stored)
	}
	// data_path is <path>/data/<db>/events_v2_store/, and deploy/local's
	// server keeps <path> in <dir>/data and its logs in <dir>/log.
	dbDir := filepath.Dir(filepath.Clean(dataPath))
	if _, err := os.Stat(dbDir); err != nil {
		t.Fatalf("ClickHouse's data directory %s is not on this machine (%v): run the test against the local server", dbDir, err)
	}
	if !grepDir(t, dbDir, find) {
		t.Errorf("no file under %s holds %q: the search sees nothing", dbDir, stored)
	}
	// No positive control there (the logs hold no data); the directory
	// must at least exist, or the search would pass by finding nothing.
	logDir := filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(dbDir))), "log")
	if entries, err := os.ReadDir(logDir); err != nil || len(entries) == 0 {
		t.Fatalf("ClickHouse's log directory %s: %d files, %v", logDir, len(entries), err)
	}
	grepDir(t, logDir, find)
}

// grepDir runs find on every regular file under dir; it reports whether
// any holds the stored value.
func grepDir(t *testing.T, dir string, find func(string, []byte, bool) bool) bool {
	t.Helper()
	seen := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) || os.IsPermission(err) {
				return nil // removed meanwhile (parts merge), or not ours
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil // removed meanwhile
		}
		seen = find(path, b, true) || seen
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return seen
}

// tableText returns every row of a table as text.
func tableText(t *testing.T, p *pipeline, table string) []byte {
	t.Helper()
	rs, err := p.db.Conn.Query(context.Background(), fmt.Sprintf("SELECT * FROM `%s`.`%s`", p.db.Name, table))
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	defer rs.Close()
	var out bytes.Buffer
	types := rs.ColumnTypes()
	for rs.Next() {
		vals := make([]any, len(types))
		for i, ct := range types {
			vals[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rs.Scan(vals...); err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for _, v := range vals {
			out.WriteString(cellText(reflect.ValueOf(v).Elem()))
			out.WriteByte('\t')
		}
		out.WriteByte('\n')
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out.Bytes()
}
