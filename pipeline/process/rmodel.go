package process

import (
	"fmt"

	"github.com/epiwatch/epiwatch/pipeline/epi"
)

// rEstimate is one posterior summary of R.
type rEstimate struct {
	mean, sd, q025, median, q975 float64
}

// rModel estimates R for the window ending on the last element of the
// incidence series (index 0 is the region's first day).
type rModel interface {
	method() string
	estimate(local, imported []float64) (rEstimate, bool)
	ratio(total []float64) (float64, bool)
}

// ratioDays is the officials' ratio R's period: the cases of the last 4
// days over those of the 4 before (schemas.Indicator.RRatio).
const ratioDays = 4

// coriR is the Cori et al. (2013) estimator as EpiEstim computes it, over
// the configured window ending on the indicator's day.
type coriR struct {
	cori *epi.Cori
	days int
}

// newRModel prepares the serial interval once. It is the configured
// pathogen's gamma discretised as EpiEstim's discr_si over its whole support
// (every later weight is exactly 0), so one vector serves every series
// length and Λ never loops past the last non-zero lag. The one place a fixed
// vector can differ from EpiEstim run on a series of T days is the NA rule
// (window end ≤ the SI's mean), whose mean EpiEstim takes over lags < T:
// for a series shorter than the support that mean is smaller. It matters
// only for windows ending by day ⌈mean⌉, which with the default 7-day
// window would include day 1 and are not estimated anyway.
func newRModel(cfg Config) (rModel, error) {
	si, ok := cfg.SerialInterval()
	if !ok {
		return nil, fmt.Errorf("process.pathogen: no serial interval for %q", cfg.Pathogen)
	}
	w, err := epi.DiscreteSISupport(si.Mean, si.SD)
	if err != nil {
		return nil, fmt.Errorf("process.serial_intervals.%s: %w", cfg.Pathogen, err)
	}
	c, err := epi.NewCori(w, epi.Prior{Mean: cfg.PriorMean, SD: cfg.PriorSD})
	if err != nil {
		return nil, fmt.Errorf("process.prior_mean/prior_sd: %w", err)
	}
	if cfg.RWindowDays < 1 {
		return nil, fmt.Errorf("process.r_window_days: must be at least 1, got %d", cfg.RWindowDays)
	}
	return coriR{cori: c, days: cfg.RWindowDays}, nil
}

func (coriR) method() string { return "cori" }

// estimate is not available (false) where EpiEstim gives NA, and for the
// first RWindowDays days, whose window would include the region's first
// day (EpiEstim never estimates day 1: nothing before it explains it).
func (m coriR) estimate(local, imported []float64) (rEstimate, bool) {
	if len(local) == 0 {
		return rEstimate{}, false
	}
	e := m.cori.Window(local, imported, len(local)-1, m.days)
	if !e.OK {
		return rEstimate{}, false
	}
	return rEstimate{mean: e.Mean, sd: e.SD, q025: e.Quantiles[0], median: e.Median(), q975: e.Quantiles[6]}, true
}

func (coriR) ratio(total []float64) (float64, bool) {
	return epi.Ratio(total, len(total)-1, ratioDays)
}
