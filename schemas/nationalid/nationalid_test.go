package nationalid

import (
	"errors"
	"testing"
	"time"
)

func TestParseIIN(t *testing.T) {
	// Structural errors; check digits are pinned by TestIINCheckDigitByHand.
	tests := []struct {
		id    string
		err   error
		birth string
		sex   string
	}{
		{"", ErrIINLength, "", ""},
		{"12345678901", ErrIINLength, "", ""},
		{"12345678901a", ErrIINLength, "", ""},
		{"951301300000", ErrIINDate, "", ""},
		{"950101700000", ErrIINCentury, "", ""},
		{"950101000000", ErrIINCentury, "", ""},
	}
	for _, tc := range tests {
		_, err := ParseIIN(tc.id)
		if !errors.Is(err, tc.err) {
			t.Errorf("ParseIIN(%q) = %v, want %v", tc.id, err, tc.err)
		}
	}
}

// TestIINCheckDigitByHand pins the algorithm on worked examples, computed
// independently of the implementation.
func TestIINCheckDigitByHand(t *testing.T) {
	tests := []struct {
		first11 string
		want    int
		ok      bool
	}{
		// 8,9,0,2,1,5,3,0,0,1,2 → 8+18+0+8+5+30+21+0+0+10+22 = 122; 122 mod 11 = 1.
		{"89021530012", 1, true},
		// 0,0,0,0,0,0,0,0,0,0,1 → 11 mod 11 = 0.
		{"00000000001", 0, true},
		// 0,0,0,0,0,0,0,0,0,1,0 → 10 → second pass: weight of position 10 is 1 → 1.
		{"00000000010", 1, true},
		// 1,0,0,0,0,0,0,0,0,0,0 → 1 → 1.
		{"10000000000", 1, true},
		// 0,0,0,0,0,0,0,0,0,0,0 → 0.
		{"00000000000", 0, true},
		// 0,…,0,2,0 → 2·10 = 20 → 9.
		{"00000000020", 9, true},
	}
	for _, tc := range tests {
		d, _ := digits(tc.first11+"0", 12)
		got, ok := iinCheckDigit(d)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("check(%s) = %d,%v want %d,%v", tc.first11, got, ok, tc.want, tc.ok)
		}
	}
}

func TestGenerateIINRoundTrip(t *testing.T) {
	births := []time.Time{
		time.Date(1899, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(1950, 2, 28, 0, 0, 0, 0, time.UTC),
		time.Date(2000, 2, 29, 0, 0, 0, 0, time.UTC),
		time.Date(2020, 7, 15, 0, 0, 0, 0, time.UTC),
	}
	seen := map[string]bool{}
	for _, b := range births {
		for _, sex := range []string{Male, Female} {
			for serial := 0; serial < 200; serial++ {
				id := GenerateIIN(b, sex, serial)
				info, err := ParseIIN(id)
				if err != nil {
					t.Fatalf("GenerateIIN(%s,%s,%d) = %s: %v", b.Format("2006-01-02"), sex, serial, id, err)
				}
				if !info.Birth.Equal(b) || info.Sex != sex {
					t.Fatalf("%s parsed as %v/%s, want %v/%s", id, info.Birth, info.Sex, b, sex)
				}
				seen[id] = true
				// Any single-digit change of the check digit must be caught.
				bad := []byte(id)
				bad[11] = '0' + (bad[11]-'0'+1)%10
				if _, err := ParseIIN(string(bad)); !errors.Is(err, ErrIINCheckDigit) {
					t.Fatalf("%s with wrong check digit accepted (%v)", bad, err)
				}
			}
		}
	}
	if len(seen) < 1000 {
		t.Fatalf("only %d distinct IINs generated", len(seen))
	}
}

func TestParsePIN(t *testing.T) {
	b := time.Date(1987, 3, 9, 0, 0, 0, 0, time.UTC)
	id := GeneratePIN(b, Female, 42)
	if id != "10903198700042" {
		t.Fatalf("GeneratePIN = %s", id)
	}
	info, err := ParsePIN(id)
	if err != nil || !info.Birth.Equal(b) || info.Sex != Female {
		t.Fatalf("ParsePIN(%s) = %+v, %v", id, info, err)
	}
	for id, want := range map[string]error{
		"1090319870004":  ErrPINLength,
		"30903198700042": ErrPINSex,
		"13203198700042": ErrPINDate,
		"10903187000042": ErrPINDate,
		"2090319870004x": ErrPINLength,
	} {
		if _, err := ParsePIN(id); !errors.Is(err, want) {
			t.Errorf("ParsePIN(%s) = %v, want %v", id, err, want)
		}
	}
}
