# P(R > 1) for every window of the EpiEstim reference cases, as R computes it:
# 1 - pgamma(1, shape, scale) of Cori's gamma posterior, its shape and scale
# read back from the posterior mean and sd EpiEstim printed (shape =
# (mean/sd)^2, scale = sd^2/mean; the %.17g numbers are exact doubles, so
# this is the arithmetic epiwatch's epi.Estimate.ProbAbove does, with R's own
# pgamma). Writes <case>_prob.csv: t_start, t_end, prob_above_1.
#
#   cd pipeline/science/epi/testdata/epiestim && Rscript prob_above_one.R [OUTDIR]
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[[1]] else "."
for (f in Sys.glob("*_R.csv")) {
  r <- read.csv(f, check.names = FALSE)
  mean <- r[["Mean(R)"]]
  sd <- r[["Std(R)"]]
  p <- 1 - pgamma(1, shape = (mean / sd)^2, scale = sd^2 / mean)
  lines <- c("t_start,t_end,prob_above_1",
             sprintf("%d,%d,%s", r$t_start, r$t_end, sprintf("%.17g", p)))
  writeLines(lines, file.path(out, sub("_R.csv$", "_prob.csv", f)))
}
