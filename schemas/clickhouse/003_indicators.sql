-- Indicators per region and day. The processor publishes a new version of a
-- (region, date) row whenever an event changes it (late reports included);
-- ReplacingMergeTree(version) keeps the highest version and indicators_latest
-- reads with FINAL, so analysts always see one row per region and day.
-- NULL means "not available" (no data, or R not estimable), never zero.
CREATE TABLE IF NOT EXISTS {db}.indicators_store
(
    region String,
    date Date,
    version UInt64,
    cases UInt32,
    cases_local UInt32,
    cases_imported UInt32,
    cases_by_onset UInt32,
    cases_7d UInt32,
    r_method String,
    r_mean Nullable(Float64),
    r_sd Nullable(Float64),
    r_q025 Nullable(Float64),
    r_median Nullable(Float64),
    r_q975 Nullable(Float64),
    r_ratio Nullable(Float64),
    cases_7d_per_100k Nullable(Float64),
    tests_7d UInt32,
    tests_positive_7d UInt32,
    positivity_7d_pct Nullable(Float64),
    tests_7d_per_100k Nullable(Float64),
    beds_total UInt32,
    beds_occupied UInt32,
    bed_occupancy_pct Nullable(Float64),
    icu_total UInt32,
    icu_occupied UInt32,
    icu_occupancy_pct Nullable(Float64),
    provisional_total UInt32,
    provisional_occupied UInt32,
    provisional_occupancy_pct Nullable(Float64),
    stale_facilities UInt32,
    contacts_7d UInt32,
    contacts_per_case Nullable(Float64),
    contacts_became_cases_pct Nullable(Float64),
    vaccinated_dose1 UInt32,
    vaccinated_dose2 UInt32,
    vaccinated_dose3_plus UInt32,
    vaccination_dose1_pct Nullable(Float64),
    vaccination_dose2_pct Nullable(Float64),
    vaccination_dose3_plus_pct Nullable(Float64),
    provisional UInt8,
    flags Array(String),
    computed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(date)
ORDER BY (region, date);

CREATE VIEW IF NOT EXISTS {db}.indicators_latest AS
SELECT *
FROM {db}.indicators_store FINAL;
