package process

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/science/beds"
)

// Which date a case counts on for R (Config.RDate).
const (
	// RByReport estimates R from confirmed cases by report date: every case
	// has one, and it is what the plan's officials count.
	RByReport = "report"
	// RByOnset estimates R from confirmed cases by symptom-onset date, closer
	// to infection time; cases without an onset date are left out of R.
	RByOnset = "onset"
)

// PathogenCOVID19 is the default pathogen.
const PathogenCOVID19 = "covid-19"

// SerialInterval is a gamma-shaped serial interval distribution in days.
type SerialInterval struct {
	Mean float64 `json:"mean" mapstructure:"mean"`
	SD   float64 `json:"sd" mapstructure:"sd"`
}

// DefaultSerialIntervals are the serial intervals known without
// configuration. COVID-19: mean 4.7 d, sd 2.9 d (Nishiura, Linton & Akhmetzhanov
// 2020, "Serial interval of novel coronavirus (COVID-19) infections", Int J
// Infect Dis 93:284-286), the value the project's plan issue names.
func DefaultSerialIntervals() map[string]SerialInterval {
	return map[string]SerialInterval{PathogenCOVID19: {Mean: 4.7, SD: 2.9}}
}

// Config configures the processor. The zero value is not valid; start from
// DefaultConfig. cmd/epiwatch maps it to the viper keys process.*.
type Config struct {
	// Pathogen selects the serial interval from SerialIntervals.
	Pathogen string `json:"pathogen" mapstructure:"pathogen"`
	// SerialIntervals per pathogen; entries here replace the defaults.
	SerialIntervals map[string]SerialInterval `json:"serial_intervals" mapstructure:"serial_intervals"`
	// RWindowDays is the length of the sliding window R is estimated over,
	// ending on the indicator's date (EpiEstim's weekly default: 7).
	RWindowDays int `json:"r_window_days" mapstructure:"r_window_days"`
	// PriorMean and PriorSD of the gamma prior on R (EpiEstim defaults 5 and
	// 5, Cori et al. 2013: deliberately wide).
	PriorMean float64 `json:"prior_mean" mapstructure:"prior_mean"`
	PriorSD   float64 `json:"prior_sd" mapstructure:"prior_sd"`
	// RDate is the date cases count on for R: RByReport or RByOnset.
	RDate string `json:"r_date" mapstructure:"r_date"`
	// BedMaxAge: a facility whose latest bed snapshot is older than this at
	// the end of a day is stale that day (excluded from ПЗК and reported).
	BedMaxAge time.Duration `json:"bed_max_age" mapstructure:"bed_max_age"`
	// BedPresumedClosedAfter: a facility silent for longer than this is
	// presumed closed (reported for an operator to confirm with a facility
	// event) instead of stale, so one closed or mistyped facility does not
	// block easing for ever (beds.Config.PresumedClosedAfter).
	BedPresumedClosedAfter time.Duration `json:"bed_presumed_closed_after" mapstructure:"bed_presumed_closed_after"`
	// EpisodeDays: a confirmed case of a person who had a confirmed case in
	// the same region within this many days before (by report date) is the
	// same episode: it is kept, but counted once, on the first report date
	// (a person notified by a laboratory and by a hospital is one case).
	// 0 counts every case event.
	EpisodeDays int `json:"episode_days" mapstructure:"episode_days"`
	// DedupWindow: an event whose source and event_id the region applied
	// within this long before (by the events stream's timestamps) is a copy
	// and changes nothing. The stream already holds each (source, event_id)
	// once (ingest stores an event only if its ref is not there) and each
	// stream message is applied once (the checkpoint records the sequences
	// done), so this only catches copies published around ingest; it keeps
	// the event keys of two windows, not of every event ever applied. 0
	// turns it off.
	DedupWindow time.Duration `json:"dedup_window" mapstructure:"dedup_window"`
	// RMinCases and RMaxCV: R whose window holds fewer local cases than
	// RMinCases, or whose posterior coefficient of variation exceeds RMaxCV,
	// carries r_status few_cases, and decisions treat it as unknown (with
	// one case in six days the prior, mean 5, dominates). EpiEstim's
	// guidance (Cori et al. 2013; EpiEstim's estimate_R documentation):
	// at least 12 cases in the window, a posterior CV below 0.3.
	RMinCases int     `json:"r_min_cases" mapstructure:"r_min_cases"`
	RMaxCV    float64 `json:"r_max_cv" mapstructure:"r_max_cv"`
	// PositivityMinTests: 7-day positivity from fewer conclusive tests than
	// this is listed as uncertain, and decisions do not read it.
	PositivityMinTests int `json:"positivity_min_tests" mapstructure:"positivity_min_tests"`
	// Completeness: a day is provisional while it is younger (relative to
	// the newest day with data) than this quantile of the region's reporting
	// delay, i.e. while less than this share of its reports is expected to
	// have arrived. The delay is measured on events that carry both dates:
	// test results (sample to result date; positivity counts by sample
	// date) and, when R counts cases by onset, cases (onset to report date).
	// Regions with fewer than DelayMinReports such events use all regions'
	// delays together. 0 marks no day provisional.
	Completeness    float64 `json:"completeness" mapstructure:"completeness"`
	DelayMinReports int     `json:"delay_min_reports" mapstructure:"delay_min_reports"`
	// A day is a backlog dump when its confirmed cases are at least
	// BacklogFactor times the median of the 14 days before it (and at least
	// BacklogMinCases), and the cases it reports with an onset date were
	// reported BacklogDelayDays or more after onset on average: old cases
	// arriving at once, not a surge. Every day whose 7-day windows include
	// it carries the flag. BacklogFactor 0 turns the check off.
	BacklogFactor    float64 `json:"backlog_factor" mapstructure:"backlog_factor"`
	BacklogMinCases  int     `json:"backlog_min_cases" mapstructure:"backlog_min_cases"`
	BacklogDelayDays float64 `json:"backlog_delay_days" mapstructure:"backlog_delay_days"`
	// ContactFollowUpDays: a contact "became a case" when the contact person
	// is reported as a confirmed case in the same region within this many
	// days after the contact (WHO's 14-day follow-up of contacts).
	ContactFollowUpDays int `json:"contact_follow_up_days" mapstructure:"contact_follow_up_days"`
	// CheckpointInterval and CheckpointBatches: the state is checkpointed
	// when either this much time or this many batches have passed since the
	// last checkpoint, and always at a clean shutdown.
	CheckpointInterval time.Duration `json:"checkpoint_interval" mapstructure:"checkpoint_interval"`
	CheckpointBatches  int           `json:"checkpoint_batches" mapstructure:"checkpoint_batches"`
	// PublishInterval bounds how long indicator records may wait while the
	// processor works through a backlog: after a full batch (more events are
	// waiting) records are published only when this much time has passed
	// since the last publication, so a day changed by many batches is
	// published once, not once per batch. A batch that is not full (the
	// processor has caught up) publishes at once, and so does every
	// checkpoint and the shutdown. 0 publishes after every batch.
	PublishInterval time.Duration `json:"publish_interval" mapstructure:"publish_interval"`
	// BatchSize is the most events fetched and applied at once; MaxWait is
	// how long a fetch waits to fill it.
	BatchSize int           `json:"batch_size" mapstructure:"batch_size"`
	MaxWait   time.Duration `json:"max_wait" mapstructure:"max_wait"`
	// AckWait is how long JetStream waits for a batch's acknowledgement
	// before redelivering it; a batch (apply, publish, checkpoint) must finish
	// within half of it.
	AckWait time.Duration `json:"ack_wait" mapstructure:"ack_wait"`
	// Nowcast: the live nowcast of the recent onset days (NowcastConfig).
	Nowcast NowcastConfig `json:"nowcast" mapstructure:"nowcast"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Pathogen:        PathogenCOVID19,
		SerialIntervals: DefaultSerialIntervals(),
		RWindowDays:     7,
		PriorMean:       5,
		PriorSD:         5,
		RDate:           RByReport,
		BedMaxAge:       beds.DefaultMaxAge,
		// Two weeks: beds.DefaultPresumedClosedAfter.
		BedPresumedClosedAfter: beds.DefaultPresumedClosedAfter,
		// 90 days: the usual window after which a new positive result is
		// counted as a reinfection (e.g. ECDC's reinfection definition).
		EpisodeDays:         90,
		DedupWindow:         24 * time.Hour,
		RMinCases:           12,
		RMaxCV:              0.3,
		PositivityMinTests:  20,
		ContactFollowUpDays: 14,
		Completeness:        0.95,
		DelayMinReports:     30,
		BacklogFactor:       3,
		BacklogMinCases:     20,
		BacklogDelayDays:    7,
		CheckpointInterval:  10 * time.Second,
		CheckpointBatches:   100,
		PublishInterval:     time.Second,
		BatchSize:           1000,
		MaxWait:             250 * time.Millisecond,
		AckWait:             2 * time.Minute,
		Nowcast:             DefaultNowcastConfig(),
	}
}

// SerialInterval returns the serial interval of the configured pathogen:
// SerialIntervals first, then the defaults.
func (c Config) SerialInterval() (SerialInterval, bool) {
	if si, ok := c.SerialIntervals[c.Pathogen]; ok {
		return si, true
	}
	si, ok := DefaultSerialIntervals()[c.Pathogen]
	return si, ok
}

// Validate returns every problem of the configuration, each naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("process.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	positive := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
	if si, ok := c.SerialInterval(); !ok {
		known := make([]string, 0)
		for p := range DefaultSerialIntervals() {
			known = append(known, p)
		}
		for p := range c.SerialIntervals {
			known = append(known, p)
		}
		sort.Strings(known)
		bad("pathogen", "no serial interval for %q; set process.serial_intervals.%s.mean and .sd, or use one of %s", c.Pathogen, c.Pathogen, strings.Join(known, ", "))
	} else if !positive(si.Mean) || !positive(si.SD) {
		bad("serial_intervals."+c.Pathogen, "mean and sd must be positive days, got mean %v sd %v", si.Mean, si.SD)
	}
	for p, si := range c.SerialIntervals {
		if p != c.Pathogen && (!positive(si.Mean) || !positive(si.SD)) {
			bad("serial_intervals."+p, "mean and sd must be positive days, got mean %v sd %v", si.Mean, si.SD)
		}
	}
	if c.RWindowDays < 1 || c.RWindowDays > 28 {
		bad("r_window_days", "must be 1..28 days, got %d (EpiEstim's default is 7)", c.RWindowDays)
	}
	if !positive(c.PriorMean) || !positive(c.PriorSD) {
		bad("prior_mean/prior_sd", "must be positive, got %v and %v (EpiEstim's defaults are 5 and 5)", c.PriorMean, c.PriorSD)
	}
	if c.RDate != RByReport && c.RDate != RByOnset {
		bad("r_date", "must be %q or %q, got %q", RByReport, RByOnset, c.RDate)
	}
	if c.BedMaxAge <= 0 {
		bad("bed_max_age", "must be positive, got %s (default %s)", c.BedMaxAge, beds.DefaultMaxAge)
	} else if c.BedPresumedClosedAfter <= c.BedMaxAge {
		bad("bed_presumed_closed_after", "must be longer than bed_max_age (%s), got %s (default %s)", c.BedMaxAge, c.BedPresumedClosedAfter, beds.DefaultPresumedClosedAfter)
	}
	if c.EpisodeDays < 0 || c.EpisodeDays > 730 {
		bad("episode_days", "must be 0..730 days, got %d (0 counts every case event)", c.EpisodeDays)
	}
	if c.DedupWindow < 0 || c.DedupWindow > 30*24*time.Hour {
		bad("dedup_window", "must be 0 (off) to 720h, got %s (default 24h; it costs memory for every event of two windows)", c.DedupWindow)
	}
	if c.RMinCases < 0 {
		bad("r_min_cases", "must not be negative, got %d (EpiEstim's guidance: 12)", c.RMinCases)
	}
	if !(c.RMaxCV > 0) || math.IsInf(c.RMaxCV, 0) {
		bad("r_max_cv", "must be positive, got %v (EpiEstim's guidance: 0.3)", c.RMaxCV)
	}
	if c.PositivityMinTests < 0 {
		bad("positivity_min_tests", "must not be negative, got %d", c.PositivityMinTests)
	}
	if c.ContactFollowUpDays < 0 || c.ContactFollowUpDays > 60 {
		bad("contact_follow_up_days", "must be 0..60 days, got %d", c.ContactFollowUpDays)
	}
	if !(c.Completeness >= 0 && c.Completeness < 1) {
		bad("completeness", "must be in [0, 1), got %v (0.95: days younger than the 95th percentile of the reporting delay are provisional; 0: none)", c.Completeness)
	}
	if c.DelayMinReports < 1 {
		bad("delay_min_reports", "must be at least 1, got %d", c.DelayMinReports)
	}
	if !(c.BacklogFactor == 0 || c.BacklogFactor >= 1 && !math.IsInf(c.BacklogFactor, 0)) {
		bad("backlog_factor", "must be 0 (off) or at least 1, got %v", c.BacklogFactor)
	}
	if c.BacklogMinCases < 0 {
		bad("backlog_min_cases", "must not be negative, got %d", c.BacklogMinCases)
	}
	if !(c.BacklogDelayDays >= 0 && c.BacklogDelayDays <= maxDelay) {
		bad("backlog_delay_days", "must be 0..%d days, got %v", maxDelay, c.BacklogDelayDays)
	}
	if c.CheckpointInterval <= 0 {
		bad("checkpoint_interval", "must be positive, got %s", c.CheckpointInterval)
	}
	if c.CheckpointBatches < 1 {
		bad("checkpoint_batches", "must be at least 1, got %d", c.CheckpointBatches)
	}
	if c.PublishInterval < 0 {
		bad("publish_interval", "must not be negative, got %s (0 publishes after every batch)", c.PublishInterval)
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		bad("batch_size", "must be 1..100000, got %d", c.BatchSize)
	}
	if c.MaxWait <= 0 {
		bad("max_wait", "must be positive, got %s", c.MaxWait)
	}
	if c.AckWait < 2*time.Second {
		bad("ack_wait", "must be at least 2s, got %s", c.AckWait)
	}
	if c.Nowcast.Enabled {
		if _, err := c.Nowcast.model(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c Config) bedConfig() beds.Config {
	return beds.Config{MaxAge: c.BedMaxAge, PresumedClosedAfter: c.BedPresumedClosedAfter}
}
