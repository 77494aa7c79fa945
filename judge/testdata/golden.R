#!/usr/bin/env Rscript
# Generates judge/testdata/wilcox_golden.json: R's wilcox.test is the oracle for
# judge.MannWhitney. Run from the repository root:
#   Rscript judge/testdata/golden.R
# Needs only r-base-core (Debian). The output is committed so that CI never needs R.
#
# R runs to convergence: tol.root = 1e-12 instead of R's default 1e-4, an absolute
# tolerance larger than the whole range of the differences of latencies in seconds, and
# every number is written with 17 significant digits.
#
# The cases under judge/testdata/kayenta/ are the input vectors of Kayenta's own unit tests,
# copied as data from spinnaker/kayenta at commit a69573be:
#   kayenta-mannwhitney/src/test/scala/com/netflix/kayenta/mannwhitney/MannWhitneySuite.scala
#   kayenta-judge/src/test/scala/com/netflix/kayenta/judge/ClassifierSuite.scala
# (each file names its test). Cases where R stops (every point of both cohorts tied) are
# left out of the golden file; judge/classify_test.go covers them.
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


# Drawn here, at the same point of the random stream as before the cases below were
# added, so that `make run`'s example stays the same: written at the end.
example_baseline <- rlnorm(240, log(101), 0.12)
example_canary <- rlnorm(240, log(162), 0.12)

# Ties, zero-inflated counts and small scales, on their own stream.
set.seed(20261201)
zinf <- function(n, p, lambda) ifelse(runif(n) < p, rpois(n, lambda) + 1, 0)
add("ties-zero-inflated-33v10",     zinf(210, 0.10, 1), zinf(210, 0.33, 1), 0.95)
add("ties-zero-inflated-aa",        zinf(300, 0.10, 1), zinf(300, 0.10, 1), 0.95)
add("ties-zero-inflated-small",     zinf(30, 0.2, 2), zinf(30, 0.5, 2), 0.90)
add("ties-zero-inflated-rates",     zinf(500, 0.05, 3) / 60, zinf(500, 0.15, 3) / 60, 0.99)
add("ties-heavy-block-5",           c(rep(5, 80), rpois(20, 8)), c(rep(5, 70), rpois(30, 8)), 0.95)
add("ties-poisson-30v30-shift",     rpois(30, 1), rpois(30, 1.5), 0.95)
add("ties-buckets-ms",              sample(c(5, 10, 25, 50, 100), 400, TRUE, c(.2, .4, .25, .1, .05)),
                                    sample(c(5, 10, 25, 50, 100), 400, TRUE, c(.15, .35, .3, .13, .07)), 0.95)
add("ties-half-steps-aa",           round(2 * rgamma(180, 4, 2)) / 2, round(2 * rgamma(180, 4, 2)) / 2, 0.98)
add("small-scale-exact-20v20",      rnorm(20, 1e-4, 1e-6), rnorm(20, 1.02e-4, 1e-6), 0.95)
add("small-scale-normal-300-shift", rlnorm(300, log(1e-4), 0.2), rlnorm(300, log(1.05e-4), 0.2), 0.95)
add("small-scale-normal-300-aa",    rlnorm(300, log(1e-4), 0.2), rlnorm(300, log(1e-4), 0.2), 0.95)
add("small-scale-ties-1e-6",        round(rlnorm(200, log(1e-4), 0.1), 6), round(rlnorm(200, log(1.03e-4), 0.1), 6), 0.95)
add("small-scale-1e-9",             rnorm(120, 3e-9, 1e-10), rnorm(120, 3.05e-9, 1e-10), 0.90)
add("small-scale-zero-inflated",    zinf(250, 0.1, 1) * 1e-4, zinf(250, 0.3, 1) * 1e-4, 0.95)

# Kayenta's unit-test vectors (see the header).
for (f in sort(list.files("judge/testdata/kayenta", pattern = "[.]txt$", full.names = TRUE))) {
  lines <- readLines(f)
  field <- function(key) {
    l <- grep(paste0("^(# )?", key, " "), lines, value = TRUE)
    strsplit(sub(paste0("^(# )?", key, " "), "", l), " ")[[1]]
  }
  add(paste0("kayenta-", sub("[.]txt$", "", basename(f))),
      as.numeric(field("baseline")), as.numeric(field("canary")), as.numeric(field("confidence")))
}

rows <- character(0)
for (cs in cases) {
  r <- tryCatch(suppressWarnings(wilcox.test(cs$canary, cs$baseline, conf.int = TRUE,
                                             conf.level = cs$conf, correct = TRUE,
                                             tol.root = 1e-12)),
                error = function(e) NULL)
  if (is.null(r) || !is.finite(r$p.value)) next # all points tied: R stops
  method <- if (grepl("exact", r$method)) "exact" else "normal"
  rows <- c(rows, sprintf(paste0('{"name":"%s","confidence":%.17g,"method":"%s","u":%.17g,"p_value":%.17g,',
                                 '"estimate":%.17g,"ci_low":%.17g,"ci_high":%.17g,"achieved_confidence":%.17g,',
                                 '"baseline":%s,"canary":%s}'),
                          cs$name, cs$conf, method, r$statistic, r$p.value, r$estimate,
                          r$conf.int[1], r$conf.int[2], attr(r$conf.int, "conf.level"),
                          fmt(cs$baseline), fmt(cs$canary)))
}
writeLines(c("[", paste(rows, collapse = ",\n"), "]"), "judge/testdata/wilcox_golden.json")
cat(sprintf("wrote %d cases of %d\n", length(rows), length(cases)))

# The example `make run` judges: p50 latency in ms of a baseline and a canary 60% slower.
dir.create("judge/testdata/example", showWarnings = FALSE)
writeLines(sprintf("%.3f", example_baseline), "judge/testdata/example/baseline.txt")
writeLines(sprintf("%.3f", example_canary), "judge/testdata/example/canary.txt")
