package schemas

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

//go:embed regions.csv
var regionsCSV []byte

// Region is one entry of the region reference.
type Region struct {
	Code       string  `json:"code" mapstructure:"code"` // ISO 3166-2, e.g. "KZ-75"
	Country    string  `json:"country" mapstructure:"country"`
	NameEN     string  `json:"name_en" mapstructure:"name_en"`
	NameRU     string  `json:"name_ru" mapstructure:"name_ru"`
	Kind       string  `json:"kind" mapstructure:"kind"` // oblast or city
	Population int     `json:"population" mapstructure:"population"`
	Lat        float64 `json:"lat" mapstructure:"lat"`
	Lon        float64 `json:"lon" mapstructure:"lon"`
}

// Regions is an immutable region reference keyed by code.
type Regions struct {
	byCode map[string]Region
	codes  []string
}

// DefaultRegions returns the shipped reference: Kazakhstan's 17 oblasts and 3
// cities, Kyrgyzstan's 7 oblasts and 2 cities.
func DefaultRegions() *Regions {
	rs, err := ParseRegions(bytes.NewReader(regionsCSV))
	if err != nil {
		panic(fmt.Sprintf("embedded regions.csv: %v", err)) // a build defect, caught by tests
	}
	return rs
}

// ParseRegions reads the CSV format of regions.csv ('#' lines are comments).
func ParseRegions(r io.Reader) (*Regions, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read regions: %w", err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("read regions: empty")
	}
	var list []Region
	for i, row := range rows[1:] {
		if len(row) != 8 {
			return nil, fmt.Errorf("regions line %d: want 8 fields, got %d", i+2, len(row))
		}
		pop, err := strconv.Atoi(row[5])
		if err != nil {
			return nil, fmt.Errorf("regions line %d: population %q: %w", i+2, row[5], err)
		}
		lat, err1 := strconv.ParseFloat(row[6], 64)
		lon, err2 := strconv.ParseFloat(row[7], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("regions line %d: bad coordinates", i+2)
		}
		list = append(list, Region{Code: row[0], Country: row[1], NameEN: row[2], NameRU: row[3], Kind: row[4], Population: pop, Lat: lat, Lon: lon})
	}
	return NewRegions(list)
}

// NewRegions builds a reference from a list, checking codes and populations.
func NewRegions(list []Region) (*Regions, error) {
	rs := &Regions{byCode: make(map[string]Region, len(list))}
	for _, r := range list {
		if err := r.check(); err != nil {
			return nil, err
		}
		if _, dup := rs.byCode[r.Code]; dup {
			return nil, fmt.Errorf("region %s: listed twice", r.Code)
		}
		rs.byCode[r.Code] = r
		rs.codes = append(rs.codes, r.Code)
	}
	sort.Strings(rs.codes)
	return rs, nil
}

func (r Region) check() error {
	cc, _, ok := strings.Cut(r.Code, "-")
	switch {
	case !ok || len(cc) != 2 || len(r.Code) > 6:
		return fmt.Errorf("region %q: want an ISO 3166-2 code like KZ-75", r.Code)
	case r.Population <= 0:
		return fmt.Errorf("region %s: population must be positive, got %d", r.Code, r.Population)
	case r.NameEN == "":
		return fmt.Errorf("region %s: name_en is required", r.Code)
	}
	return nil
}

// With returns a copy of rs with extra regions added or existing ones replaced
// (configuration can add districts or correct populations).
func (rs *Regions) With(extra []Region) (*Regions, error) {
	merged := make(map[string]Region, len(rs.byCode)+len(extra))
	for k, v := range rs.byCode {
		merged[k] = v
	}
	for _, r := range extra {
		if err := r.check(); err != nil {
			return nil, err
		}
		merged[r.Code] = r
	}
	list := make([]Region, 0, len(merged))
	for _, r := range merged {
		list = append(list, r)
	}
	return NewRegions(list)
}

// Known reports whether code is in the reference.
func (rs *Regions) Known(code string) bool { _, ok := rs.byCode[code]; return ok }

// Get returns the region with the code.
func (rs *Regions) Get(code string) (Region, bool) { r, ok := rs.byCode[code]; return r, ok }

// Codes returns every code, sorted.
func (rs *Regions) Codes() []string { return append([]string(nil), rs.codes...) }

// All returns every region, sorted by code.
func (rs *Regions) All() []Region {
	out := make([]Region, len(rs.codes))
	for i, c := range rs.codes {
		out[i] = rs.byCode[c]
	}
	return out
}

// Country returns the regions of one country (ISO 3166-1 alpha-2), sorted.
func (rs *Regions) Country(cc string) []Region {
	var out []Region
	for _, r := range rs.All() {
		if r.Country == cc {
			out = append(out, r)
		}
	}
	return out
}
