-- The region reference (ISO 3166-2 codes, names, population, map coordinates).
-- `epiwatch migrate` reloads it from the shipped data plus configuration on
-- every run; the version column makes the newest load win.
CREATE TABLE IF NOT EXISTS {db}.regions_store
(
    code String,
    country String,
    name_en String,
    name_ru String,
    kind String,
    population UInt32,
    lat Float64,
    lon Float64,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY code;

CREATE VIEW IF NOT EXISTS {db}.regions AS
SELECT code, country, name_en, name_ru, kind, population, lat, lon
FROM {db}.regions_store FINAL;
