package rtcsv

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
)

// TestRunOptions: a flag of the other method, or two flags giving the same
// thing, is bad input named by its flag, before any input is read.
func TestRunOptions(t *testing.T) {
	given := func(flags ...string) cli.Changed {
		return func(f string) bool { return strings.Contains(" "+strings.Join(flags, " ")+" ", " "+f+" ") }
	}
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"unknown method", Options{Method: "wallinga"}, `--method "wallinga": use cori or ratio`},
		{"ratio flag with cori", Options{Method: "cori", Changed: given("ratio-days")}, "--ratio-days applies to --method ratio only"},
		{"cori flag with ratio", Options{Method: "ratio", RatioDays: 4, Changed: given("window")}, "--window applies to --method cori only"},
		{"no ratio days", Options{Method: "ratio"}, "--ratio-days must be at least 1, got 0"},
		{"two serial intervals", Options{Method: "cori", SIFile: "si.csv", Changed: given("si-sd")}, "--si-sd and --si-distr both give the serial interval"},
		{"two windows", Options{Method: "cori", WindowsFile: "w.csv", Changed: given("window")}, "--window and --windows both give the windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(tt.o, strings.NewReader("unread"), &bytes.Buffer{})
			if !cli.IsBadInput(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want bad input saying %q", err, tt.want)
			}
		})
	}
}

// TestRunInput: standard input by default; a missing file, bad rows and an
// impossible estimate are bad input naming the file.
func TestRunInput(t *testing.T) {
	var out bytes.Buffer
	if err := Run(Options{Method: "ratio", RatioDays: 1}, strings.NewReader("I\n1\n2\n4\n"), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "t_start,t_end,mean,") || !strings.Contains(out.String(), "\n2,3,2,") {
		t.Errorf("ratio output:\n%s", out.String())
	}
	missing := filepath.Join(t.TempDir(), "nope.csv")
	for _, tt := range []struct {
		name, stdin string
		o           Options
		want        string
	}{
		{"missing file", "", Options{Method: "cori", Input: missing}, "nope.csv"},
		{"negative count", "I\n3\n-1\n", Options{Method: "cori"}, "<stdin>"},
		{"window too long", "I\n1\n2\n3\n", Options{Method: "cori", SIMean: 4.7, SISD: 2.9, Window: 30, PriorMean: 5, PriorSD: 5}, "<stdin>: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(tt.o, strings.NewReader(tt.stdin), &bytes.Buffer{})
			if !cli.IsBadInput(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run: %v, want bad input naming %q", err, tt.want)
			}
		})
	}
}
