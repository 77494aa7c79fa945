# Golden values of the oracle's exact stratified test (oracle_test.go, TestErrorsExactTail):
# P(X >= x) for X the sum over strata of the canary's errors, each hypergeometric given
# the stratum's canary requests n, baseline requests m and errors e of both.
# Run: Rscript analysis/eval/promsim/testdata/oracle_golden.R
law <- function(n, m, e) { lo <- max(0, e - m); hi <- min(e, n); list(lo = lo, p = dhyper(lo:hi, n, m, e)) }
conv <- function(a, b) {
  p <- numeric(length(a$p) + length(b$p) - 1)
  for (i in seq_along(a$p)) for (j in seq_along(b$p)) p[i + j - 1] <- p[i + j - 1] + a$p[i] * b$p[j]
  list(lo = a$lo + b$lo, p = p)
}
tailS <- function(strata, x) {
  d <- law(strata[[1]][1], strata[[1]][2], strata[[1]][3])
  for (s in strata[-1]) d <- conv(d, law(s[1], s[2], s[3]))
  sum(d$p[(d$lo:(d$lo + length(d$p) - 1)) >= x])
}
cases <- list(
  list(name = "one stratum, by hand (70+5)/495", strata = list(c(5, 7, 4)), x = 3),
  list(name = "two strata", strata = list(c(5, 7, 4), c(3, 2, 2)), x = 4),
  list(name = "one stratum, 1,000 requests", strata = list(c(200, 800, 30)), x = 12),
  list(name = "four strata, one without errors", strata = list(c(200, 800, 30), c(150, 900, 25), c(10, 40, 0), c(60, 60, 7)), x = 22),
  list(name = "x below the support", strata = list(c(5, 1, 4)), x = 2),
  list(name = "far tail", strata = list(c(100, 900, 40), c(100, 900, 40)), x = 30)
)
for (c in cases) cat(sprintf("%s: %.17g\n", c$name, tailS(c$strata, c$x)))
