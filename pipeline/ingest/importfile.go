package ingest

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/schemas"
)

// Record is one raw event read from a file, with where it came from.
type Record struct {
	Line int
	Raw  []byte
}

// ReadFile streams the events of an NDJSON (.ndjson, .jsonl, .json) or CSV
// (.csv) file to fn in batches of up to batch records. CSV files hold one
// event type; their header names the JSON fields (person.national_id for
// nested ones); a missing "type" column is taken from the file name
// (<type>.csv).
func ReadFile(path string, batch int, fn func([]Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		typ := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
		return readCSV(f, typ, batch, fn)
	}
	return readNDJSON(f, batch, fn)
}

func readNDJSON(r io.Reader, batch int, fn func([]Record) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var buf []Record
	line := 0
	for sc.Scan() {
		line++
		b := strings.TrimSpace(sc.Text())
		if b == "" {
			continue
		}
		buf = append(buf, Record{Line: line, Raw: []byte(b)})
		if len(buf) >= batch {
			if err := fn(buf); err != nil {
				return err
			}
			buf = nil
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

// CSV cells are strings; these fields are numbers or booleans in the contract.
var (
	csvInts = map[string]bool{"schema_version": true, "total": true, "occupied": true, "dose_number": true,
		"capacity_infectious": true, "capacity_icu": true, "capacity_provisional": true}
	csvBools = map[string]bool{"imported": true}
)

func readCSV(r io.Reader, fileType string, batch int, fn func([]Record) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read CSV header: %w", err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	hasType := false
	for _, h := range header {
		hasType = hasType || h == "type"
	}
	if !hasType && !schemas.EventType(fileType).Valid() {
		return fmt.Errorf("CSV has no type column and its file name %q is not <type>.csv", fileType)
	}
	var buf []Record
	line := 1
	for {
		row, err := cr.Read()
		line++
		if errors.Is(err, io.EOF) {
			break
		}
		var rec Record
		rec.Line = line
		if err != nil {
			// Keep the broken row as an invalid event so it is rejected with
			// its reason instead of stopping the import.
			rec.Raw = []byte(fmt.Sprintf(`{"_csv_error":%q}`, err.Error()))
		} else {
			rec.Raw = csvRowJSON(header, row, fileType, hasType)
		}
		buf = append(buf, rec)
		if len(buf) >= batch {
			if err := fn(buf); err != nil {
				return err
			}
			buf = nil
		}
	}
	if len(buf) > 0 {
		return fn(buf)
	}
	return nil
}

// csvRowJSON builds the event JSON of a CSV row: empty cells are absent,
// dotted names nest, numeric and boolean fields are converted when they parse
// (otherwise left as strings so the schema names the bad field).
func csvRowJSON(header, row []string, fileType string, hasType bool) []byte {
	obj := map[string]any{}
	if !hasType {
		obj["type"] = fileType
	}
	for i, h := range header {
		if i >= len(row) || h == "" {
			continue
		}
		v := strings.TrimSpace(row[i])
		if v == "" {
			continue
		}
		var val any = v
		if csvInts[h] {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				val = n
			}
		} else if csvBools[h] {
			if b, err := strconv.ParseBool(v); err == nil {
				val = b
			}
		}
		parent, key, nested := strings.Cut(h, ".")
		if !nested {
			obj[h] = val
			continue
		}
		m, _ := obj[parent].(map[string]any)
		if m == nil {
			m = map[string]any{}
			obj[parent] = m
		}
		m[key] = val
	}
	b, _ := json.Marshal(obj)
	return b
}

// ImportProgress reports the state of an import after each batch.
type ImportProgress struct {
	File       string
	Read       int
	Accepted   int
	Duplicates int
	Rejected   int
}

// ImportResult is the outcome of importing files.
type ImportResult struct {
	ImportProgress
	// Rejections lists each rejected record (file:line and reason).
	Rejections []string
}

// Import loads files through the same validation, pseudonymisation and
// publishing as the HTTP API. A batch refused because JetStream is unavailable
// is retried with backoff until ctx ends; importing the same file twice adds
// nothing (event_ids de-duplicate).
func (in *Ingester) Import(ctx context.Context, files []string, batch int, progress func(ImportProgress)) (*ImportResult, error) {
	if batch <= 0 {
		batch = 1000
	}
	res := &ImportResult{}
	for _, f := range files {
		res.File = f
		err := ReadFile(f, batch, func(recs []Record) error {
			raws := make([][]byte, len(recs))
			for i, r := range recs {
				raws[i] = r.Raw
			}
			sum, err := in.submitRetry(ctx, raws)
			if err != nil {
				return err
			}
			res.Read += len(recs)
			res.Accepted += sum.Accepted
			res.Duplicates += sum.Duplicates
			res.Rejected += sum.Rejected
			for _, r := range sum.Results {
				if r.Status == StatusRejected {
					res.Rejections = append(res.Rejections, fmt.Sprintf("%s:%d: %s", f, recs[r.Index].Line, r.Reason))
				}
			}
			if progress != nil {
				progress(res.ImportProgress)
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("import %s: %w", f, err)
		}
	}
	return res, nil
}

func (in *Ingester) submitRetry(ctx context.Context, raws [][]byte) (*Summary, error) {
	delay := 500 * time.Millisecond
	for {
		sum, err := in.Submit(ctx, raws)
		var ue *ErrUnavailable
		if err == nil || !errors.As(err, &ue) {
			return sum, err
		}
		in.log.Warn("JetStream unavailable; retrying batch", "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 15*time.Second)
	}
}
