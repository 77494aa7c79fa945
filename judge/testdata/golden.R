#!/usr/bin/env Rscript
# Generates judge/testdata/wilcox_golden.json: R's wilcox.test is the oracle for
# judge.MannWhitney. Run from the repository root:
#   Rscript judge/testdata/golden.R
# Needs only r-base-core (Debian). The output is committed so that CI never needs R.
set.seed(20261123)

fmt <- function(v) paste0("[", paste(sprintf("%.17g", v), collapse = ","), "]")

cases <- list()
add <- function(name, baseline, canary, conf) {
  cases[[length(cases) + 1]] <<- list(name = name, baseline = baseline, canary = canary, conf = conf)
}

# Exact branch: both samples < 50 points, continuous (no ties).
add("exact-3v3-shift",        rnorm(3, 100, 10), rnorm(3, 130, 10), 0.95)
add("exact-3v4-80",           rnorm(3), rnorm(4), 0.80)
add("exact-5v5-noshift",      rnorm(5, 10), rnorm(5, 10), 0.90)
add("exact-6v9-99",           rexp(6), rexp(9) + 1, 0.99)
add("exact-10v10-noshift",    rnorm(10, 50, 5), rnorm(10, 50, 5), 0.95)
add("exact-12v20-shift",      rlnorm(12, log(0.1), 0.3), rlnorm(20, log(0.16), 0.3), 0.95)
add("exact-20v7-80",          rnorm(20), rnorm(7, 0.5), 0.80)
add("exact-30v30-latency",    rlnorm(30, log(0.101), 0.2), rlnorm(30, log(0.162), 0.2), 0.95)
add("exact-30v30-noshift",    rlnorm(30, log(0.101), 0.2), rlnorm(30, log(0.101), 0.2), 0.99)
add("exact-49v49-shift",      rnorm(49, 0, 1), rnorm(49, 0.3, 1), 0.95)
add("exact-49v3",             rnorm(49), rnorm(3, 1), 0.90)
add("exact-45v40-cauchy",     rcauchy(45), rcauchy(40, 2), 0.95)
add("exact-25v25-t2",         rt(25, 2), rt(25, 2), 0.85)
add("exact-8v8-separated",    runif(8), runif(8) + 5, 0.95)
add("exact-15v15-negshift",   rnorm(15, 10), rnorm(15, 8), 0.98)
add("exact-4v4-unachievable", rnorm(4), rnorm(4), 0.99)

# Normal branch: a sample of 50 or more, or ties.
add("normal-50v50-noshift",   rnorm(50), rnorm(50), 0.95)
add("normal-60v60-shift",     rnorm(60, 100, 15), rnorm(60, 110, 15), 0.95)
add("normal-360v360-latency", rlnorm(360, log(0.1), 0.25), rlnorm(360, log(0.11), 0.25), 0.95)
add("normal-1440v1440-noshift", rlnorm(1440, log(0.1), 0.25), rlnorm(1440, log(0.1), 0.25), 0.99)
add("normal-5000v5000-shift", rnorm(5000, 200, 40), rnorm(5000, 203, 40), 0.95)
add("normal-5000v300",        rexp(5000, 1/50), rexp(300, 1/60), 0.90)
add("normal-100v2000-80",     rnorm(100), rnorm(2000, -0.2), 0.80)
add("normal-200v180-cauchy",  rcauchy(200, 0, 5), rcauchy(180, 3, 5), 0.95)
add("normal-500v500-t2",      rt(500, 2), rt(500, 2) + 0.4, 0.99)
add("normal-75v60-99",        rgamma(75, 2, 1), rgamma(60, 2, 0.8), 0.99)
add("ties-rounded-10v10",     round(rnorm(10, 20, 2)), round(rnorm(10, 22, 2)), 0.95)
add("ties-rounded-30v40",     round(rnorm(30, 100, 10), -1), round(rnorm(40, 110, 10), -1), 0.90)
add("ties-rounded-3v5",       c(1, 1, 2), c(1, 2, 2, 3, 3), 0.80)
add("ties-poisson-20v20",     rpois(20, 3), rpois(20, 6), 0.95)
add("ties-poisson-60v60",     rpois(60, 2), rpois(60, 2), 0.95)
add("ties-poisson-1000v1000", rpois(1000, 4), rpois(1000, 4.4), 0.99)
add("ties-binary-errors",     rbinom(200, 1, 0.01), rbinom(200, 1, 0.08), 0.95)
add("ties-counts-5000v4000",  rpois(5000, 0.5), rpois(4000, 0.6), 0.90)
add("ties-latency-ms-300",    round(rlnorm(300, log(101), 0.15)), round(rlnorm(300, log(162), 0.15)), 0.95)
add("ties-mostly-zero",       c(rep(0, 55), 1, 2), c(rep(0, 50), 1, 1, 3, 4), 0.95)
add("ties-rounded-heavy",     round(rcauchy(150, 10, 2)), round(rcauchy(150, 11, 2)), 0.85)
add("normal-3v60",            rnorm(3), rnorm(60, 1), 0.95)
add("normal-60v3",            rnorm(60), rnorm(3, 1), 0.95)
add("normal-1000v1000-clear", rnorm(1000, 0.05, 0.01), rnorm(1000, 0.09, 0.01), 0.95)
add("normal-400v400-small-scale", rnorm(400, 1e-4, 1e-5), rnorm(400, 1.05e-4, 1e-5), 0.95)
add("normal-400v400-large-scale", rnorm(400, 1e6, 1e4), rnorm(400, 1.01e6, 1e4), 0.95)
add("normal-2000v2000-error-rate", rbeta(2000, 2, 400), rbeta(2000, 2, 300), 0.95)

out <- file("judge/testdata/wilcox_golden.json", "w")
cat("[\n", file = out)
for (k in seq_along(cases)) {
  cs <- cases[[k]]
  r <- suppressWarnings(wilcox.test(cs$canary, cs$baseline, conf.int = TRUE,
                                    conf.level = cs$conf, correct = TRUE))
  method <- if (grepl("exact", r$method)) "exact" else "normal"
  cat(sprintf(paste0('{"name":"%s","confidence":%.17g,"method":"%s","u":%.17g,"p_value":%.17g,',
                     '"estimate":%.17g,"ci_low":%.17g,"ci_high":%.17g,"achieved_confidence":%.17g,',
                     '"baseline":%s,"canary":%s}%s\n'),
              cs$name, cs$conf, method, r$statistic, r$p.value, r$estimate,
              r$conf.int[1], r$conf.int[2], attr(r$conf.int, "conf.level"),
              fmt(cs$baseline), fmt(cs$canary), if (k < length(cases)) "," else ""),
      file = out)
}
cat("]\n", file = out)
close(out)
cat(sprintf("wrote %d cases\n", length(cases)))

# The example `make run` judges: p50 latency in ms of a baseline and a canary 60% slower.
dir.create("judge/testdata/example", showWarnings = FALSE)
writeLines(sprintf("%.3f", rlnorm(240, log(101), 0.12)), "judge/testdata/example/baseline.txt")
writeLines(sprintf("%.3f", rlnorm(240, log(162), 0.12)), "judge/testdata/example/canary.txt")
