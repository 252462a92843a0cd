package nowcast

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"

	"github.com/epiwatch/epiwatch/schemas"
)

// Regional is the nowcast of one region and R on it.
type Regional struct {
	Result *Result
	R      []REstimate
}

// Region nowcasts one region's cases as of asOf, its delay model shrunk
// toward pooled (FitDelay on every region's cases on the same day; nil fits
// the region alone, which needs Config.MinDelayCases), and estimates R on
// the nowcast with rcfg. Its random stream is drawn from seed and the
// region's code only, so a region's numbers do not depend on which other
// regions are nowcast with it, and the same cases, day and seed give the
// same numbers: the processor republishes identical records on a replay.
func (n *Nowcaster) Region(region string, cases []Case, asOf schemas.Date, days int, pooled *DelayModel, rcfg RConfig, seed uint64) (*Regional, error) {
	delay, err := n.FitDelay(cases, asOf, pooled)
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", region, err)
	}
	h := fnv.New64a()
	h.Write([]byte(region))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	res, err := n.Nowcast(cases, asOf, days, delay, rng)
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", region, err)
	}
	rs, err := res.R(rcfg, rng)
	if err != nil {
		return nil, fmt.Errorf("region %s: %w", region, err)
	}
	return &Regional{Result: res, R: rs}, nil
}
