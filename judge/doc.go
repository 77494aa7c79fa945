// Package judge is canaryd's scoring core: the Mann-Whitney U test with the
// Hodges-Lehmann shift and its confidence interval, threshold windows, NaN and outlier
// handling, the classification of one metric and the weighted score of a canary, and
// the sequential judges of per-step counts and histograms (CountState, HistogramState:
// anytime-valid tests with confidence sequences, whose small JSON states grow with the
// new steps only).
//
// It is pure: functions over []float64 and counts, no I/O, no logging, no clocks. R's
// wilcox.test is the oracle for the statistics (golden files in testdata/ are generated
// by testdata/golden.R).
package judge
