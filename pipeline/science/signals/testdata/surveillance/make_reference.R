# Example references for early-warning signals: R package surveillance 1.20.3 (Debian r-cran-surveillance).
# For each dataset and method: input.csv (t,count), expected.csv (t,observed,upperbound,alarm), args.txt (epiwatch flags).
# Run from anywhere (the repository root, say):
#   Rscript pipeline/science/signals/testdata/surveillance/make_reference.R
# It writes runs/ beside itself. The first loop is the surveillance reference runs' script unchanged (the ten
# salmNewport and momo runs); the second part adds runs on other data sets with non-default parameters.
suppressMessages(library(surveillance))
here <- local({
  f <- sub("^--file=", "", grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE))
  if (length(f) == 1) dirname(normalizePath(f)) else getwd()
})
out <- file.path(here, "runs"); dir.create(out, showWarnings = FALSE)
as_sts <- function(x) if (inherits(x, "sts")) x else disProg2sts(x)
series <- function(name) { s <- as_sts(get(name)); list(y = as.numeric(observed(s)[, 1]), freq = s@freq) }
write_run <- function(id, y, t, ub, alarm, args) {
  d <- file.path(out, id); dir.create(d, showWarnings = FALSE)
  write.csv(data.frame(t = seq_along(y), count = y), file.path(d, "input.csv"), row.names = FALSE, quote = FALSE)
  e <- data.frame(t = t, observed = y[t], upperbound = sprintf("%.15g", ub), alarm = as.integer(alarm))
  e$upperbound[is.na(ub)] <- "NA"
  write.csv(e, file.path(d, "expected.csv"), row.names = FALSE, quote = FALSE)
  writeLines(args, file.path(d, "args.txt"))
}
ears <- function(name, y, freq, method, alpha, baseline = 7) {
  s <- sts(observed = matrix(y), frequency = freq, start = c(2000, 1))
  rng <- (baseline + switch(method, C1 = 1, C2 = 3, C3 = 5)):length(y)  # earsC's own default range
  r <- earsC(s, control = list(range = rng, method = method, baseline = baseline, alpha = alpha))
  write_run(sprintf("%s-ears-%s-a%s-b%d", name, tolower(method), alpha, baseline), y, rng,
            as.numeric(upperbound(r)[, 1]), as.logical(alarms(r)[, 1]),
            sprintf("--method ears-%s --alpha %s --baseline %d --from %d", tolower(method), alpha, baseline, min(rng)))
}
farr <- function(name, y, freq, kind, b = 3, w = 3, alpha = 0.05) {
  s <- sts(observed = matrix(y), frequency = freq, start = c(2000, 1))
  start <- b * freq + w + 1
  rng <- start:length(y)
  if (kind == "farrington") {
    ctl <- list(range = rng, b = b, w = w, alpha = alpha)  # farringtonFlexible defaults otherwise
    flags <- sprintf("--method farrington --freq %d --b %d --w %d --alpha %s --from %d", freq, b, w, alpha, start)
  } else {
    ctl <- list(range = rng, b = b, w = w, alpha = alpha, noPeriods = 10, pastWeeksNotIncluded = 26,
                weightsThreshold = 2.58, thresholdMethod = "nbPlugin")
    flags <- sprintf("--method noufaily --freq %d --b %d --w %d --alpha %s --from %d", freq, b, w, alpha, start)
  }
  r <- suppressWarnings(farringtonFlexible(s, control = ctl))
  write_run(sprintf("%s-%s-b%d-w%d-a%s", name, kind, b, w, alpha), y, rng,
            as.numeric(upperbound(r)[, 1]), as.logical(alarms(r)[, 1]), flags)
}
weekly <- c("salmNewport", "momo")  # first column of each
for (nm in weekly) {
  data(list = nm); s <- series(nm)
  for (m in c("C1", "C2", "C3")) ears(nm, s$y, s$freq, m, if (m == "C3") 0.025 else 0.001)
  farr(nm, s$y, s$freq, "farrington")
  farr(nm, s$y, s$freq, "noufaily")
}

# More runs, on other data sets shipped with the package (first column of each), with parameters other than the
# ones above: EARS baselines 4, 5, 6, 10 and alphas 0.005, 0.01, 0.05; Farrington and Noufaily with b from 2 to 5,
# w from 1 to 4, alpha 0.01, 0.025 and 0.05, weekly and monthly (rotaBB, freq 12).
extra <- function(name) { data(list = name); series(name) }
s <- extra("salmonella.agona"); ears("salmonella.agona", s$y, s$freq, "C1", 0.01, baseline = 10)
s <- extra("shadar");           ears("shadar", s$y, s$freq, "C3", 0.05, baseline = 5)
s <- extra("ha");               ears("ha", s$y, s$freq, "C2", 0.005, baseline = 4)
                                ears("ha", s$y, s$freq, "C3", 0.01, baseline = 6)
s <- extra("abattoir");         ears("abattoir", s$y, s$freq, "C3", 0.01, baseline = 10)
s <- extra("hepatitisA");       farr("hepatitisA", s$y, s$freq, "farrington", b = 2, w = 2, alpha = 0.01)
s <- extra("stsNewport");       farr("stsNewport", s$y, s$freq, "farrington", b = 5, w = 3, alpha = 0.01)
s <- extra("rotaBB");           farr("rotaBB", s$y, s$freq, "farrington", b = 5, w = 1, alpha = 0.025)
s <- extra("rotaBB");           farr("rotaBB", s$y, s$freq, "noufaily", b = 4, w = 2, alpha = 0.05)
s <- extra("salmAllOnset");     farr("salmAllOnset", s$y, s$freq, "noufaily", b = 5, w = 4, alpha = 0.01)
s <- extra("n1");               farr("n1", s$y, s$freq, "noufaily", b = 2, w = 2, alpha = 0.025)
s <- extra("abattoir");         farr("abattoir", s$y, s$freq, "noufaily", b = 2, w = 3, alpha = 0.01)
cat(length(list.files(out)), "runs\n")

# Options of farringtonFlexible that `epiwatch signals` does not expose, for package signals' own tests: each
# options/<id>.csv is R's t,observed,upperbound,alarm for salmonella.agona (input.csv of its EARS run above) with
# b = 4, w = 2, alpha = 0.05 and the control given here; signals_test.go builds the same configurations by id.
opts <- file.path(here, "options"); dir.create(opts, showWarnings = FALSE)
opt <- function(id, ...) {
  data(salmonella.agona); y <- series("salmonella.agona")$y
  s <- sts(observed = matrix(y), frequency = 52, start = c(2000, 1))
  rng <- (4 * 52 + 2 + 1):length(y)
  r <- suppressWarnings(farringtonFlexible(s, control = list(range = rng, b = 4, w = 2, alpha = 0.05, ...)))
  ub <- as.numeric(upperbound(r)[, 1])
  e <- data.frame(t = rng, observed = y[rng], upperbound = sprintf("%.15g", ub), alarm = as.integer(alarms(r)[, 1]))
  e$upperbound[is.na(ub)] <- "NA"
  write.csv(e, file.path(opts, paste0(id, ".csv")), row.names = FALSE, quote = FALSE)
}
opt("no-reweight", reweight = FALSE)
opt("no-trend", trend = FALSE)
opt("trend-p1", pThresholdTrend = 1)
opt("weights-threshold-1", weightsThreshold = 1)
opt("limit54-8-3", limit54 = c(8, 3))
opt("periods4-past0", noPeriods = 4, pastWeeksNotIncluded = 0)
opt("nbplugin-periods1", thresholdMethod = "nbPlugin")
cat(length(list.files(opts)), "option runs\n")
