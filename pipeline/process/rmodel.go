package process

import (
	"fmt"

	"github.com/epiwatch/epiwatch/pipeline/science/epi"
)

// rModel estimates R over the windows ending on each day of a region's
// incidence series (index 0 is the region's first day).
type rModel interface {
	method() string
	// estimates appends to dst the estimates of the windows ending on
	// indices from..to; only the mean, sd, 2.5 %, median and 97.5 %
	// quantiles are published (schemas.Indicator), the others may be NaN.
	estimates(dst []epi.Estimate, local, imported []float64, from, to int) []epi.Estimate
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
	// Only the quantiles an indicator carries, those of large shapes
	// interpolated: each root-finding on the incomplete gamma function costs
	// more than the rest of an estimate (see epi.Cori.WithLevels and
	// WithInterpolatedQuantiles; within 1e-13 of the root finder).
	if c, err = c.WithLevels(0.025, 0.5, 0.975); err != nil {
		return nil, err
	}
	c = c.WithInterpolatedQuantiles()
	return coriR{cori: c, days: cfg.RWindowDays}, nil
}

func (coriR) method() string { return "cori" }

// estimates are not available (OK false) where EpiEstim gives NA, and for
// the first RWindowDays days, whose window would include the region's first
// day (EpiEstim never estimates day 1: nothing before it explains it). One
// Range call computes each day's Λ once for all the windows.
func (m coriR) estimates(dst []epi.Estimate, local, imported []float64, from, to int) []epi.Estimate {
	return m.cori.Range(dst, local, imported, from, to, m.days)
}

func (coriR) ratio(total []float64) (float64, bool) {
	return epi.Ratio(total, len(total)-1, ratioDays)
}
