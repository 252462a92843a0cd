package schemas

import "testing"

// FuzzDecode feeds arbitrary bytes to the event decoder and the validator:
// an event or an error, never a panic.
func FuzzDecode(f *testing.F) {
	c, err := NewContract()
	if err != nil {
		f.Fatal(err)
	}
	v := &Validator{Regions: DefaultRegions()}
	f.Add([]byte(`{"event_id":"c1","type":"case","region":"KZ-75","source":"t","person":{"national_id":"900101300017"},"report_date":"2020-07-01"}`))
	f.Add([]byte(`{"event_id":"b1","type":"bed_snapshot","region":"KZ-71","source":"t","facility_id":"f","snapshot_time":"2020-07-01T08:00:00Z","bed_kind":"icu","total":1,"occupied":2}`))
	f.Add([]byte(`{"type":"case",`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := c.Decode(raw)
		if err != nil {
			return
		}
		if e == nil {
			t.Fatal("Decode returned neither an event nor an error")
		}
		_ = v.Validate(e)
	})
}
