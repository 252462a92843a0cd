package rtcsv

import (
	"io"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/science/epi"
)

// Options are the choices of `epiwatch rt`, one field per flag.
type Options struct {
	// Input is the incidence file, or "-" (or "") for standard input.
	Input string
	// Method is cori (Cori et al. 2013, as EpiEstim) or ratio (the
	// officials' ratio R, RatioDays against the RatioDays before).
	Method string
	// SIMean and SISD give a gamma serial interval; SIFile a discrete one
	// (k,w) instead.
	SIMean, SISD float64
	SIFile       string
	// Window is the sliding window in days; WindowsFile explicit windows
	// (t_start,t_end) instead.
	Window      int
	WindowsFile string
	// PriorMean and PriorSD are the gamma prior on R.
	PriorMean, PriorSD float64
	RatioDays          int
	// MinCases and MaxCV mark a window few_cases (EpiEstim's guidance).
	MinCases int
	MaxCV    float64
	// Changed tells which flags were given: one that does not apply to the
	// method, or two that give the same thing, is an error.
	Changed cli.Changed
}

// Run reads the incidence, estimates R and writes the CSV to stdout. Bad
// options and bad input are cli.BadInputError naming the flag, or the file
// and line.
func Run(o Options, stdin io.Reader, stdout io.Writer) error {
	if err := o.check(); err != nil {
		return err
	}
	in, err := cli.ReadInput(o.Input, stdin, ReadIncidence)
	if err != nil {
		return cli.BadInput(err)
	}
	if o.Method == "ratio" {
		return WriteRatio(stdout, in.Total(), o.RatioDays)
	}

	cfg := CoriConfig{
		SIMean: o.SIMean, SISD: o.SISD,
		WindowDays: o.Window,
		Prior:      epi.Prior{Mean: o.PriorMean, SD: o.PriorSD},
	}
	if o.SIFile != "" {
		if cfg.SI, err = cli.ReadFile(o.SIFile, ReadSI); err != nil {
			return cli.BadInput(err)
		}
	}
	if o.WindowsFile != "" {
		cfg.Windows, err = cli.ReadFile(o.WindowsFile, func(r io.Reader, label string) ([]epi.Window, error) {
			return ReadWindows(r, label, in.Days())
		})
		if err != nil {
			return cli.BadInput(err)
		}
	}
	es, err := Cori(in, cfg)
	if err != nil {
		return cli.BadInputf("%s: %w", cli.DisplayName(o.Input), err)
	}
	x := Extra{SIMean: o.SIMean, SISD: o.SISD, Local: in.Local, MinCases: o.MinCases, MaxCV: o.MaxCV}
	if cfg.SI != nil {
		x.SIMean, x.SISD = epi.SIMean(cfg.SI), epi.SISD(cfg.SI)
	}
	return WriteEstimates(stdout, es, x)
}

// check rejects a method's flags given to the other method and two flags
// that give the same thing.
func (o Options) check() error {
	switch o.Method {
	case "cori":
		if f := o.Changed.First("ratio-days"); f != "" {
			return cli.BadInputf("--%s applies to --method ratio only", f)
		}
	case "ratio":
		if f := o.Changed.First("si-mean", "si-sd", "si-distr", "window", "windows", "prior-mean", "prior-sd"); f != "" {
			return cli.BadInputf("--%s applies to --method cori only", f)
		}
		if o.RatioDays < 1 {
			return cli.BadInputf("--ratio-days must be at least 1, got %d", o.RatioDays)
		}
	default:
		return cli.BadInputf("--method %q: use cori or ratio", o.Method)
	}
	if o.SIFile != "" {
		if f := o.Changed.First("si-mean", "si-sd"); f != "" {
			return cli.BadInputf("--%s and --si-distr both give the serial interval; use one", f)
		}
	}
	if o.WindowsFile != "" && o.Changed.First("window") != "" {
		return cli.BadInputf("--window and --windows both give the windows; use one")
	}
	return nil
}
