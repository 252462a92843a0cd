package nowcast

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/epiwatch/epiwatch/pipeline/science/epi"
	"github.com/epiwatch/epiwatch/schemas"
)

// RConfig is the Cori estimator R is computed with: the serial interval
// weights w_0 = 0, w_1, … (epi.DiscreteSI or DiscreteSISupport), the gamma
// prior on R (epi.DefaultPrior) and the window in days (EpiEstim's 7).
type RConfig struct {
	SI     []float64
	Prior  epi.Prior
	Window int
}

// REstimate is R on one nowcast day: the posterior of the Cori window of
// Window days ending on that onset date, mixed over the completed series.
type REstimate struct {
	Date schemas.Date
	// OK is false where EpiEstim gives NA (a window reaching the series'
	// first day, or ending on or before the serial interval's mean); the
	// numbers are then 0.
	OK bool
	// Exact is true when no completion changes the window — its days and
	// every day their infectiousness counts are complete (or nothing more
	// was drawn for them): the estimate is then epi's Cori estimate of the
	// reported counts, bit for bit.
	Exact bool
	// Mean and the 2.5, 50 and 97.5 % quantiles of R (r_nowcast_mean,
	// r_nowcast_q025, r_nowcast_median, r_nowcast_q975).
	Mean, Q025, Median, Q975 float64
	// FinalQ025 and FinalQ975 are the 2.5 and 97.5 % quantiles, over the
	// completions, of Cori's posterior mean (r_nowcast_final_q025,
	// r_nowcast_final_q975): where EpiEstim's R mean is expected to land
	// once the window's reports are complete. Q025–Q975 add Cori's own
	// posterior width to that; this interval is only what the unreported
	// cases leave open, which is what a decision on the final data will
	// differ by. FinalQ10 and FinalQ90 are the 10 and 90 % quantiles (the
	// 80 % interval). All equal Mean on an exact window.
	FinalQ025, FinalQ10, FinalQ90, FinalQ975 float64
	// LocalQ025 is the 2.5 % quantile, over the completions, of the local
	// cases in the window: the evidence R will rest on once the reports are
	// complete, at its likely least (the reported count on an exact
	// window). R on fewer than the processor's r_min_cases is uncertain,
	// so a nowcast R is trusted only where this already clears the bar.
	LocalQ025 float64
}

// R estimates the reproduction number by onset date on each of the
// result's days, propagating the nowcast's uncertainty: for each of the M
// completed series the window's posterior is Cori's gamma, Gamma(a₀ + ΣI,
// scale 1/(1/b₀ + ΣΛ)), and R's posterior is the mixture of the M gammas
// (the completions being draws from the nowcast's predictive distribution,
// this is R's posterior given the data and the delay model). Its mean is the
// mean of the gamma means; its quantiles are those of one draw from each
// gamma (Hyndman & Fan type 7). Imported cases are completed in proportion
// to the reported ones of their day (they are assumed to be reported like
// the others); cases without an onset date are not in the series, which
// leaves R unbiased when the onset is missing independently of the onset
// day (a constant thinning scales ΣI and ΣΛ alike). rng draws the mixture.
func (r *Result) R(cfg RConfig, rng *rand.Rand) ([]REstimate, error) {
	if rng == nil {
		return nil, errors.New("nowcast: no random source; pass a seeded *rand.Rand")
	}
	if cfg.Window < 1 {
		return nil, fmt.Errorf("nowcast: R window of %d days: want at least 1 (EpiEstim's default is 7)", cfg.Window)
	}
	cori, err := epi.NewCori(cfg.SI, cfg.Prior)
	if err != nil {
		return nil, fmt.Errorf("nowcast: R: %w", err)
	}
	cori, err = cori.WithLevels(0.025, 0.5, 0.975)
	if err != nil {
		return nil, err
	}
	si := cfg.SI
	for len(si) > 1 && si[len(si)-1] == 0 {
		si = si[:len(si)-1]
	}
	K := len(si) - 1
	w := cfg.Window
	ratio := cfg.Prior.Mean / cfg.Prior.SD
	a0, b0 := ratio*ratio, cfg.Prior.SD*cfg.Prior.SD/cfg.Prior.Mean // EpiEstim's a_prior, b_prior

	T := len(r.Reported)
	local := make([]float64, T)
	for j := range local {
		local[j] = r.Reported[j] - r.ReportedImported[j]
	}
	imported := r.ReportedImported
	ts := T - r.tail
	// diffFrom is the first series day some completion changes.
	diffFrom := T
	for i := 0; i < r.tail && diffFrom == T; i++ {
		for m := 0; m < r.m; m++ {
			if r.draws[m*r.tail+i] != r.Reported[ts+i] {
				diffFrom = ts + i
				break
			}
		}
	}

	// The windows no completion changes are estimated on the reported
	// counts by epi (Range: the same numbers as Window, Λ computed once);
	// the others are mixtures. A window is estimated when EpiEstim would:
	// it starts after day 1 and ends after the serial interval's mean.
	first := T - len(r.Days)
	out := make([]REstimate, len(r.Days))
	var mix []int // series days estimated as a mixture
	exactTo := min(diffFrom, T) - 1
	var exact []epi.Estimate
	if exactTo >= first {
		exact = cori.Range(nil, local, imported, first, exactTo, w)
	}
	for i := range out {
		e := first + i
		out[i].Date = r.Start.AddDays(e)
		if e <= exactTo {
			est := exact[i]
			out[i].OK, out[i].Exact = est.OK, est.OK
			if est.OK {
				out[i].Mean, out[i].Q025, out[i].Median, out[i].Q975 = est.Mean, est.Quantiles[0], est.Quantiles[3], est.Quantiles[6]
				out[i].FinalQ025, out[i].FinalQ10, out[i].FinalQ90, out[i].FinalQ975 = est.Mean, est.Mean, est.Mean, est.Mean
				for j := max(e-w+1, 0); j <= e; j++ {
					out[i].LocalQ025 += local[j]
				}
			}
			continue
		}
		if e-w+1 >= 1 && float64(e+1) > cori.SIMean() {
			out[i].OK = true
			mix = append(mix, e)
		}
	}
	if len(mix) == 0 {
		return out, nil
	}

	// Λ of the reported counts from the first mixture window's start;
	// a completion adds Σ_k w_k·δ_{t−k} for the days t−k it completes
	// (δ = completed − reported, non-zero on a few tail days only).
	from := mix[0] - w + 1
	n := T - from
	lamRep := make([]float64, n)
	for j := from; j < T; j++ {
		lam := 0.0
		for k := 1; k <= K && k <= j; k++ {
			lam += si[k] * r.Reported[j-k]
		}
		lamRep[j-from] = lam
	}
	lam := make([]float64, n)
	loc := make([]float64, n)
	cumI := make([]float64, n+1)
	cumL := make([]float64, n+1)
	samples := make([]float64, len(mix)*r.m)
	pointMeans := make([]float64, len(mix)*r.m) // Cori's mean per completion
	localSums := make([]float64, len(mix)*r.m)  // the window's local cases per completion
	means := make([]float64, len(mix))
	for m := 0; m < r.m; m++ {
		copy(lam, lamRep)
		for j := from; j < T; j++ {
			loc[j-from] = local[j]
		}
		row := r.draws[m*r.tail : (m+1)*r.tail]
		for i, v := range row {
			j := ts + i
			delta := v - r.Reported[j]
			if delta == 0 {
				continue
			}
			if j >= from {
				imp := 0.0
				if r.Reported[j] > 0 {
					imp = imported[j] * v / r.Reported[j]
				}
				loc[j-from] = v - imp
			}
			for k := max(1, from-j); k <= K && j+k < T; k++ {
				lam[j+k-from] += si[k] * delta
			}
		}
		for x := 0; x < n; x++ {
			cumI[x+1] = cumI[x] + loc[x]
			cumL[x+1] = cumL[x] + lam[x]
		}
		for x, e := range mix {
			s, t := e-w+1-from, e+1-from
			a := a0 + (cumI[t] - cumI[s])
			b := 1 / (1/b0 + (cumL[t] - cumL[s]))
			means[x] += a * b
			pointMeans[x*r.m+m] = a * b
			localSums[x*r.m+m] = cumI[t] - cumI[s]
			samples[x*r.m+m] = b * gammaRand(rng, a)
		}
	}
	finalLevels := [4]float64{0.025, 0.10, 0.90, 0.975}
	var fq [4]float64
	for x, e := range mix {
		o := &out[e-first]
		o.Mean = means[x] / float64(r.m)
		o.Q025, o.Median, o.Q975 = quantiles3(samples[x*r.m : (x+1)*r.m])
		tailQuantiles(pointMeans[x*r.m:(x+1)*r.m], finalLevels[:], fq[:])
		o.FinalQ025, o.FinalQ10, o.FinalQ90, o.FinalQ975 = fq[0], fq[1], fq[2], fq[3]
		tailQuantiles(localSums[x*r.m:(x+1)*r.m], finalLevels[:1], fq[:1])
		o.LocalQ025 = fq[0]
	}
	return out, nil
}
