package detect

import (
	"fmt"
	"slices"

	"github.com/epiwatch/epiwatch/schemas"
)

// Config is the detect.* configuration.
type Config struct {
	// Methods are the detectors run (schemas.Method*): ears-c2 and ears-c3
	// daily, farrington and noufaily weekly.
	Methods []string `mapstructure:"methods"`
	// Streams are the daily series watched (schemas.Signal*).
	Streams []string `mapstructure:"streams"`
	// Baseline is the number of days EARS compares a day with (earsC's
	// baseline, default 7).
	Baseline int `mapstructure:"baseline"`
	// MinSigma floors the baseline's standard deviation (earsC's minSigma).
	// earsC's default is 0, with which seven days without a case make one
	// case an alarm; daily surveillance counts need a floor (default 1).
	MinSigma float64 `mapstructure:"min_sigma"`
	// MinAlarmCount: a count below it raises no alarm, whatever the bound
	// (a handful of cases is not evidence; Farrington's limit54 says the same
	// for weeks). Default 10.
	MinAlarmCount int `mapstructure:"min_alarm_count"`
	// HistoryYears is the years of past weeks Farrington and Noufaily fit
	// (their b, default 3). Until a region has that many (plus w weeks),
	// their signals say so instead of a bound.
	HistoryYears int `mapstructure:"history_years"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Methods:       []string{schemas.MethodEARSC2, schemas.MethodEARSC3, schemas.MethodFarrington, schemas.MethodNoufaily},
		Streams:       []string{schemas.SignalCases, schemas.SignalTestsPositive, schemas.SignalBedsOccupied},
		Baseline:      7,
		MinSigma:      1,
		MinAlarmCount: 10,
		HistoryYears:  3,
	}
}

// Validate reports the first setting that cannot work, naming it.
func (c Config) Validate() error {
	known := []string{schemas.MethodEARSC2, schemas.MethodEARSC3, schemas.MethodFarrington, schemas.MethodNoufaily}
	for _, m := range c.Methods {
		if !slices.Contains(known, m) {
			return fmt.Errorf("detect.methods: unknown method %q (known: %v)", m, known)
		}
	}
	streams := []string{schemas.SignalCases, schemas.SignalTestsPositive, schemas.SignalBedsOccupied}
	for _, s := range c.Streams {
		if !slices.Contains(streams, s) {
			return fmt.Errorf("detect.streams: unknown series %q (known: %v)", s, streams)
		}
	}
	switch {
	case c.Baseline < 3:
		return fmt.Errorf("detect.baseline: %d days; EARS needs at least 3 (default 7)", c.Baseline)
	case c.MinSigma < 0:
		return fmt.Errorf("detect.min_sigma: %v must be ≥ 0 (default 1)", c.MinSigma)
	case c.MinAlarmCount < 0:
		return fmt.Errorf("detect.min_alarm_count: %d must be ≥ 0 (default 10)", c.MinAlarmCount)
	case c.HistoryYears < 1:
		return fmt.Errorf("detect.history_years: %d must be ≥ 1 (default 3)", c.HistoryYears)
	}
	return nil
}
