# Regenerates the EpiEstim reference outputs in this folder.
#
# Usage (from this folder):
#   Rscript make_reference.R [OUTDIR]
# OUTDIR defaults to the current directory.
#
# Needs R with EpiEstim 2.2.4 and incidence (Debian bookworm:
#   apt-get install r-cran-epiestim r-cran-incidence).
# README.md describes the cases and files, METHOD.md the formulas.
#
# Every number is written with sprintf("%.17g") so doubles round-trip exactly;
# NA is written as `NA`. In the *_params.json files, the configured inputs
# (mean_si, std_si, prior, cv_posterior) are written as R prints them
# (as.character), the computed SI moments with "%.17g".

# Sys.timezone() falls back to `timedatectl` when TZ is unset, which warns in
# containers without systemd. Fix TZ so that no such warning can leak into the
# `warnings` recorded for a run.
if (Sys.getenv("TZ") == "") Sys.setenv(TZ = "UTC")

suppressPackageStartupMessages(library(EpiEstim))

args <- commandArgs(trailingOnly = TRUE)
outdir <- if (length(args) >= 1) args[[1]] else "."
dir.create(outdir, showWarnings = FALSE, recursive = TRUE)

# ---------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------

# Number as "%.17g"; NA (of any type) becomes "NA".
num17 <- function(x) {
  out <- sprintf("%.17g", as.numeric(x))
  out[is.na(x)] <- "NA"
  out
}

# Writes a data frame of already formatted columns as CSV: comma-separated,
# no quoting, "\n" line endings.
write_csv_lines <- function(cols, file) {
  lines <- c(paste(names(cols), collapse = ","),
             do.call(paste, c(unname(cols), sep = ",")))
  con <- file(file.path(outdir, file), open = "wb")
  on.exit(close(con))
  writeLines(lines, con, sep = "\n")
}

# JSON scalars.
json_str <- function(s) {
  s <- gsub("\\", "\\\\", s, fixed = TRUE)
  s <- gsub("\"", "\\\"", s, fixed = TRUE)
  s <- gsub("\n", "\\n", s, fixed = TRUE)
  paste0("\"", s, "\"")
}
json_num17 <- function(x) if (is.na(x)) "null" else sprintf("%.17g", x)   # computed values
json_num <- function(x) if (is.na(x)) "null" else as.character(x)         # configured inputs
json_int <- function(x) sprintf("%d", as.integer(x))
json_str_array <- function(v, indent) {
  if (length(v) == 0) return("[]")
  pad <- strrep(" ", indent + 2)
  paste0("[\n", paste0(pad, vapply(v, json_str, ""), collapse = ",\n"),
         "\n", strrep(" ", indent), "]")
}

# Writes a JSON object from a named list of already rendered values. A value
# that is itself a list is rendered as a nested object.
json_object <- function(x, indent = 0) {
  pad <- strrep(" ", indent + 2)
  items <- vapply(names(x), function(k) {
    v <- x[[k]]
    if (is.list(v)) v <- json_object(v, indent + 2)
    paste0(pad, json_str(k), ": ", v)
  }, "")
  paste0("{\n", paste(items, collapse = ",\n"), "\n", strrep(" ", indent), "}")
}

# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------

# Writes <name>_incidence.csv: the counts and EpiEstim's local/imported split
# after its pre-processing (all day-1 cases become imported).
write_incidence <- function(incid, dates, file) {
  processed <- EpiEstim:::process_I(incid)
  T <- nrow(processed)
  write_csv_lines(list(
    day = num17(seq_len(T)),
    date = if (is.null(dates)) rep("", T) else as.character(dates),
    I = num17(processed$local + processed$imported),
    local = num17(processed$local),
    imported = num17(processed$imported)
  ), file)
}

data(Flu2009, package = "EpiEstim")
write_incidence(Flu2009$incidence, Flu2009$incidence$dates, "Flu2009_incidence.csv")

# Synthetic renewal process (README.md, "Synthetic case").
simulate_synthetic <- function() {
  set.seed(42)
  days <- 120
  R_true <- c(rep(2.0, 40), rep(0.8, 40), rep(1.3, 40))
  w <- discr_si(0:(days - 1), 4.7, 2.9)      # w[k + 1] is w_k
  I <- numeric(days)
  lambda <- rep(NA_real_, days)
  I[1] <- 10
  for (t in 2:days) {
    # Lambda_t = sum_{k=1}^{t-1} w_k I_{t-k}
    lambda[t] <- sum(w[2:t] * I[(t - 1):1])
    I[t] <- rpois(1, R_true[t] * lambda[t])
  }
  list(R_true = R_true, lambda = lambda, I = I)
}

sim <- simulate_synthetic()
write_csv_lines(list(
  day = num17(seq_along(sim$I)),
  R_true = num17(sim$R_true),
  lambda_true = num17(sim$lambda),
  I = num17(sim$I)
), "synthetic_truth.csv")
write_incidence(sim$I, NULL, "synthetic_incidence.csv")

# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

# Runs estimate_R for one case and writes its four files.
#   config_list: the list passed to make_config()
#   explicit_windows: TRUE when t_start/t_end are given in config_list
#   simulation: optional named list of rendered JSON values (synthetic case)
run_case <- function(case, dataset, incid, incidence_file, method, config_list,
                     explicit_windows = FALSE, simulation = NULL) {
  config <- make_config(config_list)

  # Run EpiEstim, recording (and silencing) every R warning it raises.
  warns <- character(0)
  res <- withCallingHandlers(
    suppressMessages(estimate_R(incid, method = method, config = config)),
    warning = function(w) {
      warns <<- c(warns, conditionMessage(w))
      invokeRestart("muffleWarning")
    })

  T <- nrow(EpiEstim:::process_I(incid))
  Rtab <- res$R
  si <- res$si_distr
  lambda <- overall_infectivity(incid, si)

  # <case>_R.csv: EpiEstim's res$R, columns as named by EpiEstim.
  write_csv_lines(lapply(Rtab, num17), paste0(case, "_R.csv"))

  # <case>_si.csv: the SI vector EpiEstim used (length T+1).
  write_csv_lines(list(k = num17(seq_along(si) - 1), w = num17(si)),
                  paste0(case, "_si.csv"))

  # <case>_lambda.csv: total infectiousness.
  write_csv_lines(list(day = num17(seq_along(lambda)), lambda = num17(lambda)),
                  paste0(case, "_lambda.csv"))

  # <case>_params.json
  parametric <- method == "parametric_si"
  prior_shape <- (config$mean_prior / config$std_prior)^2
  prior_scale <- config$std_prior^2 / config$mean_prior
  params <- list(
    case = json_str(case),
    dataset = json_str(dataset),
    method = json_str(method),
    mean_si = json_num(if (parametric) config$mean_si else NA),
    std_si = json_num(if (parametric) config$std_si else NA),
    si_source = json_str(if (parametric)
      "discr_si(0:(T-1), mean_si, std_si), padded with one 0 to length T+1"
      else "si_distr given by caller, zero-padded to length T+1"),
    si_discrete_mean = json_num17(res$SI.Moments$Mean),
    si_discrete_std = json_num17(res$SI.Moments$Std),
    T = json_int(T),
    windows = json_str(if (explicit_windows)
      "explicit t_start/t_end (see _R.csv)"
      else "default weekly sliding: t_start = 2..T-6, t_end = t_start + 6"),
    window_days = json_int(Rtab$t_end[1] - Rtab$t_start[1] + 1),
    t_start_first = json_int(Rtab$t_start[1]),
    t_start_last = json_int(Rtab$t_start[nrow(Rtab)]),
    n_windows = json_int(nrow(Rtab)),
    n_windows_NA = json_int(sum(is.na(Rtab$`Mean(R)`))),
    mean_prior = json_num(config$mean_prior),
    std_prior = json_num(config$std_prior),
    prior_shape = json_num(prior_shape),
    prior_scale = json_num(prior_scale),
    cv_posterior = json_num(config$cv_posterior),
    warnings = json_str_array(warns, 2),
    epiestim_version = json_str(as.character(packageVersion("EpiEstim"))),
    r_version = json_str(R.version.string),
    files = list(
      R = json_str(paste0(case, "_R.csv")),
      si = json_str(paste0(case, "_si.csv")),
      lambda = json_str(paste0(case, "_lambda.csv")),
      incidence = json_str(incidence_file)
    )
  )
  if (!is.null(simulation)) params$simulation <- simulation
  con <- file(file.path(outdir, paste0(case, "_params.json")), open = "wb")
  on.exit(close(con))
  writeLines(json_object(params), con, sep = "\n")
}

T_flu <- nrow(Flu2009$incidence)

run_case("Flu2009_nonparametric_weekly", "Flu2009", Flu2009$incidence,
         "Flu2009_incidence.csv", "non_parametric_si",
         list(si_distr = Flu2009$si_distr))

run_case("Flu2009_parametric_weekly", "Flu2009", Flu2009$incidence,
         "Flu2009_incidence.csv", "parametric_si",
         list(mean_si = 2.6, std_si = 1.5))

run_case("Flu2009_parametric_14day", "Flu2009", Flu2009$incidence,
         "Flu2009_incidence.csv", "parametric_si",
         list(mean_si = 2.6, std_si = 1.5,
              t_start = seq(2, T_flu - 13), t_end = seq(2, T_flu - 13) + 13),
         explicit_windows = TRUE)

run_case("synthetic_parametric_weekly", "synthetic", sim$I,
         "synthetic_incidence.csv", "parametric_si",
         list(mean_si = 4.7, std_si = 2.9),
         simulation = list(
           seed = json_int(42),
           days = json_int(120),
           I_day1 = json_int(10),
           R_true = json_str("2.0 on days 1-40, 0.8 on days 41-80, 1.3 on days 81-120"),
           si = json_str("discr_si(0:119, 4.7, 2.9)"),
           draw = json_str("for t in 2..120: lambda_t = sum_{k=1}^{t-1} w_k I_{t-k}; I_t = rpois(1, R_t * lambda_t)")
         ))
