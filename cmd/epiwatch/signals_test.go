package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// signalsRuns is the surveillance reference folder of package signals.
var signalsRuns = filepath.Join("..", "..", "pipeline", "science", "signals", "testdata", "surveillance", "runs")

// runSignals runs `epiwatch signals args...` on stdin (runCommand).
func runSignals(t *testing.T, stdin string, args ...string) (string, int, error) {
	t.Helper()
	return runCommand(newSignalsCmd(), stdin, args...)
}

// TestSignalsMatchesSurveillance runs the command on every reference run's
// input with the flags of its args.txt and compares the output with R's
// expected.csv: t, observed and alarm identical, upperbound NA where R's
// is and within 1e-9 (EARS) or 1e-6 (farrington, noufaily) relative
// elsewhere. Half the runs read the file, half standard input.
func TestSignalsMatchesSurveillance(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(signalsRuns, "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 15 {
		t.Fatalf("%d reference runs in %s, want at least 15", len(dirs), signalsRuns)
	}
	for i, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			flags, err := os.ReadFile(filepath.Join(dir, "args.txt"))
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Fields(string(flags))
			input := filepath.Join(dir, "input.csv")
			stdin := ""
			if i%2 == 0 {
				args = append(args, input)
			} else {
				raw, err := os.ReadFile(input)
				if err != nil {
					t.Fatal(err)
				}
				stdin = string(raw)
				args = append(args, "-")
			}
			out, code, err := runSignals(t, stdin, args...)
			if code != 0 {
				t.Fatalf("exit %d: %v", code, err)
			}
			got := csvTable(t, out)
			raw, err := os.ReadFile(filepath.Join(dir, "expected.csv"))
			if err != nil {
				t.Fatal(err)
			}
			want := csvTable(t, string(raw))
			if len(got) != len(want) {
				t.Fatalf("%d rows, R %d", len(got), len(want))
			}
			if strings.Join(got[0], ",") != "t,observed,upperbound,alarm" {
				t.Errorf("header %v", got[0])
			}
			tol := 1e-6
			if strings.Contains(string(flags), "ears-") {
				tol = 1e-9
			}
			bad := 0
			for r := 1; r < len(want); r++ {
				g, w := got[r], want[r]
				ok := g[0] == w[0] && g[1] == w[1] && g[3] == w[3]
				if (g[2] == "NA") != (w[2] == "NA") {
					ok = false
				} else if w[2] != "NA" {
					gv, err1 := strconv.ParseFloat(g[2], 64)
					wv, err2 := strconv.ParseFloat(w[2], 64)
					ok = ok && err1 == nil && err2 == nil && (gv == wv || math.Abs(gv-wv) <= tol*math.Abs(wv))
				}
				if !ok {
					if bad++; bad <= 10 {
						t.Errorf("row %d: %v, R %v", r, g, w)
					}
				}
			}
			if bad > 10 {
				t.Errorf("%d rows differ", bad)
			}
		})
	}
}

// TestSignalsBadInput: bad input and usage are exit status 2 with a
// one-line message naming what is wrong and where, and no output.
func TestSignalsBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var long strings.Builder
	long.WriteString("t,count\n")
	for i := 1; i <= 30; i++ {
		long.WriteString(strconv.Itoa(i) + "," + strconv.Itoa(i%5) + "\n")
	}
	good := write("good.csv", long.String())
	tests := []struct {
		name    string
		stdin   string
		args    []string
		wantErr string
	}{
		{"missing file", "", []string{"--method", "ears-c1", filepath.Join(dir, "nope.csv")}, "nope.csv"},
		{"no header", "", []string{"--method", "ears-c1", write("nohdr.csv", "1,5\n2,3\n")}, `nohdr.csv:1: header "1,5", want "t,count"`},
		{"empty", "", []string{"--method", "ears-c1", "-"}, "<stdin>: empty file"},
		{"gap in t", "t,count\n1,5\n2,3\n4,1\n", []string{"--method", "ears-c1"}, "<stdin>:4: t = 4 after t = 2: periods must be consecutive"},
		{"negative count", "", []string{"--method", "ears-c2", write("neg.csv", "t,count\n1,5\n2,-3\n")}, "neg.csv:3: count -3 is negative"},
		{"fractional count", "t,count\n1,5\n2,2.5\n", []string{"--method", "ears-c1", "-"}, "<stdin>:3: count 2.5 is not a whole number"},
		{"not a count", "t,count\n1,five\n", []string{"--method", "ears-c1", "-"}, `<stdin>:2: count "five" is not a number`},
		{"too short for EARS", "", []string{"--method", "ears-c3", "--baseline", "28", good}, "good.csv: series too short for EARS C3 with baseline 28: it has 30 periods, the first one evaluated is t = 33"},
		{"too short for farrington", "", []string{"--method", "farrington", "--freq", "52", "--b", "1", good}, "good.csv: series too short for Farrington with b = 1, w = 3, freq = 52: it has 30 periods, the first one evaluated is t = 56"},
		{"too short for noufaily", "", []string{"--method", "noufaily", "--freq", "12", good}, "good.csv: series too short for Noufaily with b = 5, w = 3, freq = 12"},
		{"from too early", "", []string{"--method", "ears-c1", "--from", "3", good}, "the first period it can evaluate is t = 8, not 3"},
		{"too many seasonal levels", "", []string{"--method", "noufaily", "--freq", "4", "--b", "1", good}, "Noufaily noPeriods = 10: more seasonal levels than the 4 periods of a year"},
		{"from past the end", "", []string{"--method", "ears-c1", "--from", "31", good}, "it has 30 periods, the first one evaluated is t = 31"},
		{"negative from", "", []string{"--method", "ears-c1", "--from", "-1", good}, "--from -1: periods are numbered from 1"},
		{"no method", "", []string{good}, "give --method: one of ears-c1, ears-c2, ears-c3, farrington, noufaily"},
		{"unknown method", "", []string{"--method", "cusum", good}, `--method "cusum": use one of`},
		{"no freq", "", []string{"--method", "farrington", good}, "farrington needs --freq, the number of periods per year"},
		{"freq with EARS", "", []string{"--method", "ears-c1", "--freq", "52", good}, "--freq applies to farrington and noufaily only, not ears-c1"},
		{"b with EARS", "", []string{"--method", "ears-c2", "--b", "3", good}, "--b applies to farrington and noufaily only"},
		{"baseline with farrington", "", []string{"--method", "noufaily", "--freq", "4", "--baseline", "5", good}, "--baseline applies to the EARS methods only"},
		{"bad alpha", "", []string{"--method", "ears-c1", "--alpha", "1.5", good}, "--alpha 1.5: must be between 0 and 1"},
		{"small baseline", "", []string{"--method", "ears-c1", "--baseline", "2", good}, "good.csv: EARS baseline 2: earsC needs a baseline of at least 3 periods"},
		{"bad flag value", "", []string{"--method", "ears-c1", "--baseline", "seven", good}, "seven"},
		{"unknown flag", "", []string{"--method", "ears-c1", "--lag", "7", good}, "lag"},
		{"two files", "", []string{"--method", "ears-c1", good, good}, "one count file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, err := runSignals(t, tt.stdin, tt.args...)
			if code != 2 {
				t.Fatalf("exit %d (%v), want 2", code, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error spans lines: %q", err)
			}
			if out != "" {
				t.Errorf("wrote output on bad input:\n%s", out)
			}
		})
	}
}

// TestSignalsSmall pins a whole small run: the default range start, NA
// bounds and alarms of C3, and --from.
func TestSignalsSmall(t *testing.T) {
	in := "t,count\n1,0\n2,0\n3,0\n4,0\n5,0\n6,0\n7,0\n8,0\n9,3\n10,0\n"
	out, code, err := runSignals(t, in, "--method", "ears-c3", "--baseline", "3")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	want := `t,observed,upperbound,alarm
8,0,NA,NA
9,3,NA,NA
10,0,NA,NA
`
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// C1 from t = 9: baseline 0,0,0 (bound 0, so 3 alarms), then 0,0,3
	// (mean 1, sd √3).
	out, code, err = runSignals(t, in, "--method", "ears-c1", "--baseline", "3", "--from", "9")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	rows := csvTable(t, out)
	if len(rows) != 3 || strings.Join(rows[1], ",") != "9,3,0,1" || rows[2][0] != "10" || rows[2][3] != "0" {
		t.Fatalf("got\n%s", out)
	}
	const z = 3.090232306167813 // qnorm(1 - 0.001) in R
	if ub, _ := strconv.ParseFloat(rows[2][2], 64); math.Abs(ub-(1+z*math.Sqrt(3))) > 1e-12 {
		t.Errorf("bound at t = 10: %s, want 1 + qnorm(0.999)·√3 = %v", rows[2][2], 1+z*math.Sqrt(3))
	}
}

// TestSignalsHelp: the help names every method with its reference and
// shows examples.
func TestSignalsHelp(t *testing.T) {
	out, code, err := runSignals(t, "", "--help")
	if code != 0 {
		t.Fatalf("exit %d: %v", code, err)
	}
	for _, s := range []string{"ears-c1", "ears-c3", "farrington", "noufaily", "Hutwagner et al. 2003",
		"Farrington et al. (1996", "Noufaily et al. (2013", "Salmon, Schumacher & Höhle 2016", "Examples:",
		"--freq", "--baseline", "--from", "t,observed,upperbound,alarm"} {
		if !strings.Contains(out, s) {
			t.Errorf("help lacks %q", s)
		}
	}
	if testing.Verbose() {
		t.Log("\n" + out)
	}
}
