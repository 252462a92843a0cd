package sigcsv

import (
	"io"
	"slices"
	"strings"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
)

// Options are the choices of `epiwatch signals`, one field per flag.
type Options struct {
	// Input is the count file, or "-" (or "") for standard input.
	Input  string
	Params Params
	// Changed tells which flags were given: one that does not apply to the
	// method is an error.
	Changed cli.Changed
}

// Run reads the counts, runs the detector and writes the CSV to stdout.
// Bad options and bad input are cli.BadInputError naming the flag, or the
// file and line.
func Run(o Options, stdin io.Reader, stdout io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	counts, err := cli.ReadInput(o.Input, stdin, ReadCounts)
	if err != nil {
		return cli.BadInput(err)
	}
	rs, err := o.Params.Run(counts)
	if err != nil {
		return cli.BadInputf("%s: %w", cli.DisplayName(o.Input), err)
	}
	return WriteResults(stdout, rs)
}

// check rejects a missing or unknown method, flags of the other family of
// methods and values out of range, before any input is read.
func (o Options) check() error {
	p := o.Params
	switch {
	case p.Method == "":
		return cli.BadInputf("give --method: one of %s (see 'epiwatch signals --help')", strings.Join(Methods, ", "))
	case !slices.Contains(Methods, p.Method):
		return cli.BadInputf("--method %q: use one of %s", p.Method, strings.Join(Methods, ", "))
	case p.IsEARS():
		if f := o.Changed.First("freq", "b", "w"); f != "" {
			return cli.BadInputf("--%s applies to farrington and noufaily only, not %s", f, p.Method)
		}
	default:
		if o.Changed.First("baseline") != "" {
			return cli.BadInputf("--baseline applies to the EARS methods only; %s uses --b years and --w periods around each", p.Method)
		}
		if p.Freq == 0 {
			return cli.BadInputf("%s needs --freq, the number of periods per year: 52 for weekly counts, 12 for monthly, 365 for daily", p.Method)
		}
	}
	if o.Changed.First("alpha") != "" && !(p.Alpha > 0 && p.Alpha < 1) {
		return cli.BadInputf("--alpha %v: must be between 0 and 1 (exclusive)", p.Alpha)
	}
	if p.From < 0 {
		return cli.BadInputf("--from %d: periods are numbered from 1", p.From)
	}
	return nil
}
