package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzReadCSV feeds arbitrary bytes to the CSV importer: it returns records
// or an error, never panics, and every record it makes is valid JSON.
func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("event_id,region,source,person.national_id,report_date\nc1,KZ-75,t,900101300017,2020-07-01\n"))
	f.Add([]byte("event_id,total,occupied\nb1,10,11\n"))
	f.Add([]byte("a,b\n\"unterminated\n"))
	f.Add([]byte("person.national_id,person\nx,y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = readCSV(bytes.NewReader(data), "case", 7, func(recs []Record) error {
			for _, r := range recs {
				if !json.Valid(r.Raw) {
					t.Fatalf("line %d: importer made invalid JSON %q", r.Line, r.Raw)
				}
			}
			return nil
		})
	})
}
