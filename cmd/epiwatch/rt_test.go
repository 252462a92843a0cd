package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// rtReference is the EpiEstim reference folder of package epi.
var rtReference = filepath.Join("..", "..", "pipeline", "science", "epi", "testdata", "epiestim")

// runRt runs `epiwatch rt args...` on stdin (runCommand).
func runRt(t *testing.T, stdin string, args ...string) (string, int, error) {
	t.Helper()
	return runCommand(newRtCmd(), stdin, args...)
}

// runCommand runs one subcommand on stdin and returns its output and the
// exit code realMain would give (0, or the exitError's code, else 1).
func runCommand(c *cobra.Command, stdin string, args ...string) (string, int, error) {
	var out bytes.Buffer
	c.SetArgs(args)
	c.SetOut(&out)
	c.SetErr(&bytes.Buffer{})
	c.SetIn(strings.NewReader(stdin))
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.Execute()
	code := 0
	if err != nil {
		code = 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), code, err
}

// csvTable parses a command's CSV output.
func csvTable(t *testing.T, s string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, s)
	}
	return recs
}

// TestRtMatchesEpiEstim: the command on the Flu2009 reference incidence
// gives EpiEstim's R table, weekly and with explicit 14-day windows.
func TestRtMatchesEpiEstim(t *testing.T) {
	incidence := filepath.Join(rtReference, "Flu2009_incidence.csv")
	if _, err := os.Stat(incidence); err != nil {
		t.Fatalf("EpiEstim reference missing: %v", err)
	}
	tests := []struct {
		ref  string
		args []string
	}{
		{"Flu2009_parametric_weekly_R.csv", []string{"--si-mean", "2.6", "--si-sd", "1.5", incidence}},
		{"Flu2009_parametric_14day_R.csv", []string{"--si-mean", "2.6", "--si-sd", "1.5", "--windows", filepath.Join(rtReference, "Flu2009_parametric_14day_R.csv"), incidence}},
		{"Flu2009_nonparametric_weekly_R.csv", []string{"--si-distr", filepath.Join(rtReference, "Flu2009_nonparametric_weekly_si.csv"), "--window", "7", incidence}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			out, code, err := runRt(t, "", tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %v", code, err)
			}
			got := csvTable(t, out)
			raw, err := os.ReadFile(filepath.Join(rtReference, tt.ref))
			if err != nil {
				t.Fatal(err)
			}
			want := csvTable(t, string(raw))
			// EpiEstim's columns first; epiwatch's own only after them.
			if !strings.HasPrefix(strings.Join(got[0], ","), "t_start,t_end,mean,std,q025,q05,q25,median,q75,q95,q975,") {
				t.Errorf("header %v", got[0])
			}
			if len(got) != len(want) {
				t.Fatalf("%d rows, EpiEstim %d", len(got), len(want))
			}
			for i := 1; i < len(want); i++ {
				for j := range want[i] {
					g, _ := strconv.ParseFloat(got[i][j], 64)
					w, _ := strconv.ParseFloat(want[i][j], 64)
					if math.Abs(g-w) > 1e-9*math.Abs(w) {
						t.Errorf("row %d column %s: %s, EpiEstim %s", i, want[0][j], got[i][j], want[i][j])
					}
				}
			}
		})
	}
}

func TestRtStdinAndRatio(t *testing.T) {
	in := "I\n1\n1\n1\n1\n2\n2\n2\n2\n0\n"
	out, code, err := runRt(t, in, "--method", "ratio", "-")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	want := `t_start,t_end,mean,std,q025,q05,q25,median,q75,q95,q975,prob_above_1,growth_rate,doubling_time,trend,status
1,8,2,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
2,9,1.2,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA,NA
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// No file argument reads stdin too; 2-day ratio.
	out, code, _ = runRt(t, "0\n0\n3\n6\n", "--method", "ratio", "--ratio-days", "1")
	if code != 0 || !strings.Contains(out, "\n3,4,2,") || !strings.Contains(out, "\n1,2,NA,") {
		t.Errorf("exit %d, output\n%s", code, out)
	}
	// Cori from stdin: the first weekly window is day 2-8.
	out, code, err = runRt(t, "I\n5\n3\n4\n6\n2\n7\n5\n8\n9\n")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	if rows := csvTable(t, out); len(rows) != 3 || rows[1][0] != "2" || rows[1][1] != "8" || rows[1][2] == "NA" {
		t.Errorf("output\n%s", out)
	}
}

// TestRtBadInput: bad input is exit status 2 with a message naming what is
// wrong and where.
func TestRtBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "I\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n")
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"missing file", "", []string{filepath.Join(dir, "nope.csv")}, "nope.csv"},
		{"negative count", "", []string{write("neg.csv", "I\n1\n-3\n")}, "neg.csv:3: column I: negative count -3"},
		{"not a number", "I\n1\nx\n", []string{"-"}, `<stdin>:3: column I: "x" is not a number`},
		{"series too short", "I\n1\n2\n", nil, "<stdin>: the incidence has 2 days; a 7-day window needs at least 8"},
		{"SI not from 0", "", []string{"--si-distr", write("si.csv", "k,w\n0,0.2\n1,0.8\n"), good}, "si.csv:2: w[0] = 0.2"},
		{"SI sum", "", []string{"--si-distr", write("si2.csv", "k,w\n0,0\n1,0.5\n"), good}, "sum to 0.5"},
		{"SI mean", "", []string{"--si-mean", "0.5", good}, "serial interval mean must be a number above 1 day"},
		{"window out of range", "", []string{"--windows", write("w.csv", "t_start,t_end\n2,11\n"), good}, "w.csv:2: window 2–11 out of range"},
		{"bad prior", "", []string{"--prior-sd", "0", good}, "prior mean and sd must be positive"},
		{"unknown method", "", []string{"--method", "wallinga", good}, `--method "wallinga": use cori or ratio`},
		{"two SIs", "", []string{"--si-mean", "3", "--si-distr", "x.csv", good}, "--si-mean and --si-distr both give the serial interval"},
		{"two window flags", "", []string{"--window", "5", "--windows", "x.csv", good}, "--window and --windows"},
		{"cori flag with ratio", "", []string{"--method", "ratio", "--window", "5", good}, "--window applies to --method cori only"},
		{"ratio flag with cori", "", []string{"--ratio-days", "3", good}, "--ratio-days applies to --method ratio only"},
		{"zero ratio days", "", []string{"--method", "ratio", "--ratio-days", "0", good}, "--ratio-days must be at least 1"},
		{"zero window", "", []string{"--window", "0", good}, "window length must be at least 1 day"},
		{"two files", "", []string{good, good}, "one incidence file"},
		{"bad flag value", "", []string{"--window", "seven", good}, "seven"},
		{"unknown flag", "", []string{"--windw", "7", good}, "windw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := runRt(t, tt.stdin, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if out != "" {
				t.Errorf("wrote output on bad input:\n%s", out)
			}
		})
	}
}
