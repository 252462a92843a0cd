package pseudo_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/testkit/golden"
)

// Personal data planted in testdata/redact; none may survive.
var planted = []string{
	"900315312341", "851102400773", "20905197800123", "900315312342", "12345678901234",
	"Aigerim", "Testov", "Abai ave", "Chui 1", "1990-03-15", "1978-05-09",
	"701 123 45 67", "7011234567", "765 43 21", "555", "+996", "+7",
}

func TestRedactGolden(t *testing.T) {
	p := k1(t)
	pseudonym, _ := p.Pseudonym("k1", "KZ", "900315312341")
	files, _ := filepath.Glob("testdata/redact/*")
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(raw)
			out := p.Redact(raw)
			if !bytes.Equal(raw, orig) {
				t.Fatal("Redact modified its input")
			}
			for _, s := range planted {
				if bytes.Contains(out, []byte(s)) {
					t.Errorf("%q survives: %s", s, out)
				}
			}
			if json.Valid(raw) {
				if !json.Valid(out) {
					t.Errorf("valid JSON in, invalid out: %s", out)
				}
				if strings.Contains(string(raw), `"national_id":"900315312341"`) && !bytes.Contains(out, []byte(pseudonym)) {
					t.Errorf("a valid national_id should become its pseudonym: %s", out)
				}
			}
			golden.Check(t, f+".golden", out)
		})
	}
	if n == 0 {
		t.Fatal("no testdata/redact inputs")
	}
}

func TestRedactCases(t *testing.T) {
	p := k1(t)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", ``, ``},
		{"nothing personal", `{"event_id":"b1","total":10}`, `{"event_id":"b1","total":10}`},
		{"a national ID as a number", `{"person":{"national_id":900315312341}}`, `{"person":{"national_id":"[redacted]"}}`},
		{"an invalid national ID", `{"region":"KZ-75","person":{"national_id":"900315312342"}}`, `{"person":{"national_id":"[redacted]"},"region":"KZ-75"}`},
		{"an ID-length number anywhere", `[1, 123456789012, 1.5]`, `[1,"[redacted-id]",1.5]`},
		{"an ID in a key", `{"900315312341":true}`, `{"[redacted-id]":true}`},
		{"case-insensitive keys", `{"Name":"X","PHONE":"1","Address":{"a":1},"birthDate":"2000-01-01"}`, `{"Address":"[redacted]","Name":"[redacted]","PHONE":"[redacted]","birthDate":"[redacted]"}`},
		{"facility_name is not personal", `{"facility_name":"City Hospital 2"}`, `{"facility_name":"City Hospital 2"}`},
		{"JSON inside a string", `{"raw":"{\"name\":\"Secret\"}"}`, `{"raw":"{\"name\":\"[redacted]\"}"}`},
		{"truncated string", `{"person":{"name":"Sec`, `{"person":{"name":"[redacted]"`},
		{"bare value", `{"person":{"national_id":90031531 , "x`, `{"person":{"national_id":"[redacted]" , "x`},
		{"escaped quotes", `{"name":"A \"B\" C","x":1`, `{"name":"[redacted]","x":1`},
		{"phones in text", `call +7 (701) 123-45-67 or 8 701 765 43 21 or +996555123456`, `call [redacted-phone] or [redacted-phone] or +[redacted-id]`},
		{"long digit runs", `id=2090519780012300 x 12345678901 y`, `id=[redacted-id] x 12345678901 y`},
		{"a pseudonym is kept whole", `{"person":{"pseudonym":"` + strings.Repeat("0123456789abcdef", 4) + `","key_id":"k1"}}`, `{"person":{"key_id":"k1","pseudonym":"` + strings.Repeat("0123456789abcdef", 4) + `"}}`},
		{"an ID hidden in a pseudonym is not", `{"pseudonym":"900315312341` + strings.Repeat("a", 52) + `"}`, `{"pseudonym":"[redacted-id]` + strings.Repeat("a", 52) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(p.Redact([]byte(tc.in))); got != tc.want {
				t.Fatalf("Redact(%s)\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
}

var (
	inputRuns     = regexp.MustCompile(`[0-9]{12,}`)
	keptPseudonym = regexp.MustCompile(`"pseudonym":"[0-9a-f]{64}"`)
)

// FuzzRedact: Redact never panics, keeps valid JSON valid, and no run of 12
// or more digits of the input (an IIN is 12, a PIN 14) reaches the output.
func FuzzRedact(f *testing.F) {
	files, _ := filepath.Glob("testdata/redact/*")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		``, `{}`, `null`, `"900315312341"`, `[900315312341]`, `{"a":1e900315312341}`,
		`{"national_id":"20905197800123","region":"KZ-75"}`, `{"name":"\u0039\u0030031531234`, "\xff\xfe900315312341\x00",
		`{"x":"\u00390031531234123"}`, `{"phone":"+7 701`, `{"` + strings.Repeat(`[`, 100),
	} {
		f.Add([]byte(s))
	}
	p := k1(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		orig := bytes.Clone(in)
		out := p.Redact(in)
		if !bytes.Equal(in, orig) {
			t.Fatal("Redact modified its input")
		}
		// A pseudonym (64 hex, no valid ID inside) is kept whole: its
		// digit runs are not IDs.
		rest := keptPseudonym.ReplaceAll(out, nil)
		for _, run := range inputRuns.FindAll(orig, -1) {
			if bytes.Contains(rest, run) {
				t.Fatalf("digit run %s survives:\n in: %q\nout: %q", run, orig, out)
			}
		}
		if json.Valid(orig) && !json.Valid(out) {
			t.Fatalf("valid JSON in, invalid out:\n in: %q\nout: %q", orig, out)
		}
	})
}
