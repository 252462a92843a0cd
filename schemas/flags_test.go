package schemas

import "testing"

// TestFlagWireValues pins the flags' stored spellings: indicator records,
// decisions and alert payloads already in users' streams and tables carry
// them, so a rename (even of the odd pair beds_stale/stale_beds) would split
// every query and rule file in two.
func TestFlagWireValues(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{FlagBacklogDump, "backlog_dump"},
		{FlagStaleBeds, "stale_beds"},
		{IndicatorFlagStaleBeds, "beds_stale"},
		{FlagMissingInput, "missing_input"},
		{FlagNegativeCorrection, "negative_correction"},
		{FlagStaleFeed, "stale_feed"},
		{FlagUnknownFacility, "unknown_facility"},
		{FlagOverCapacity, "over_capacity"},
		{FlagNoPopulation, "no_population"},
		{FlagFewCases, "few_cases"},
		{FlagFewTests, "few_tests"},
		{FlagPresumedClosed, "presumed_closed"},
		{FlagProvisional, "provisional"},
		{FlagNowcast, "nowcast"},
	} {
		if tc.got != tc.want {
			t.Errorf("flag %q, stored as %q: keep the stored spelling", tc.got, tc.want)
		}
	}
}

func TestRuleFlag(t *testing.T) {
	for in, want := range map[string]string{
		IndicatorFlagStaleBeds: FlagStaleBeds,
		FlagStaleBeds:          FlagStaleBeds,
		FlagBacklogDump:        FlagBacklogDump,
		FlagNoPopulation:       FlagNoPopulation,
		"something_new":        "something_new",
	} {
		if got := RuleFlag(in); got != want {
			t.Errorf("RuleFlag(%q) = %q, want %q", in, got, want)
		}
	}
	for _, f := range []string{FlagFewCases, FlagFewTests, FlagPresumedClosed} {
		if !IsInformationalFlag(f) {
			t.Errorf("%s is informational", f)
		}
	}
	if IsInformationalFlag(IndicatorFlagStaleBeds) || IsInformationalFlag(FlagMissingInput) {
		t.Error("a flag rule sets read counted as informational")
	}
}
