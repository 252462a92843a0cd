package sigcsv

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
)

// TestRunOptions: a missing or unknown method, a flag of the other family
// and values out of range are bad input named by the flag, before any
// input is read.
func TestRunOptions(t *testing.T) {
	given := func(flag string) cli.Changed { return func(f string) bool { return f == flag } }
	ears := DefaultParams("ears-c1")
	farr := DefaultParams("farrington")
	farr.Freq = 52
	alpha := ears
	alpha.Alpha = 1
	from := ears
	from.From = -1
	noFreq := DefaultParams("noufaily")
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no method", Options{Params: DefaultParams("")}, "give --method"},
		{"unknown method", Options{Params: DefaultParams("cusum")}, `--method "cusum"`},
		{"--b with EARS", Options{Params: ears, Changed: given("b")}, "--b applies to farrington and noufaily only, not ears-c1"},
		{"--baseline with farrington", Options{Params: farr, Changed: given("baseline")}, "--baseline applies to the EARS methods only"},
		{"no --freq", Options{Params: noFreq}, "noufaily needs --freq"},
		{"alpha 1", Options{Params: alpha, Changed: given("alpha")}, "--alpha 1: must be between 0 and 1"},
		{"from -1", Options{Params: from}, "--from -1"},
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

// TestRunStdin: the counts come from standard input by default; a series
// too short for the method is bad input naming <stdin>.
func TestRunStdin(t *testing.T) {
	var in strings.Builder
	in.WriteString(CountsHeader + "\n")
	for i := 1; i <= 10; i++ {
		fmt.Fprintf(&in, "%d,%d\n", i, map[bool]int{true: 30, false: 2}[i == 10])
	}
	var out bytes.Buffer
	if err := Run(Options{Params: DefaultParams("ears-c1")}, strings.NewReader(in.String()), &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), ResultsHeader+"\n") || !strings.HasSuffix(out.String(), "\n10,30,2,1\n") {
		t.Errorf("output:\n%s", out.String())
	}
	err := Run(Options{Params: DefaultParams("ears-c3")}, strings.NewReader(CountsHeader+"\n1,2\n2,3\n"), &bytes.Buffer{})
	if !cli.IsBadInput(err) || !strings.HasPrefix(err.Error(), "<stdin>: ") {
		t.Errorf("short series: %v, want bad input naming <stdin>", err)
	}
}
