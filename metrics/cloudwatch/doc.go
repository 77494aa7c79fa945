// Package cloudwatch is the metrics.Provider for Amazon CloudWatch: it runs one cohort's
// rendered query through GetMetricData (github.com/aws/aws-sdk-go-v2/service/cloudwatch),
// following NextToken, and turns every returned result into a stream. It owns the AWS
// credentials (the default chain, static keys from a file or the config, an assumed role);
// it never judges, never caches, and never logs or returns a secret.
//
// # The query
//
// A rendered query is one of:
//   - a metric-math or SEARCH expression, sent as a single MetricDataQuery with Id "q" and
//     Period = the analysis' step:
//     SEARCH('{AWS/ApplicationELB,LoadBalancer,TargetGroup} MetricName="HTTPCode_Target_5XX_Count" TargetGroup="targetgroup/checkout-canary/1"', 'Sum')
//   - a JSON list of MetricDataQuery objects, written as the AWS CLI writes
//     --metric-data-queries (Id, Expression, Label, ReturnData, Period, AccountId, and
//     MetricStat {Metric {Namespace, MetricName, Dimensions [{Name, Value}]}, Period, Stat,
//     Unit}); keys match case-insensitively, unknown keys are an error. A MetricStat or an
//     expression without a Period gets the step. Only the queries CloudWatch returns
//     (ReturnData, true by default) become streams, so helpers such as the m1 and m2 of
//     "100 * m1 / m2" are set "ReturnData": false;
//   - one such object on its own, the same as a list of one.
//
// Each stream is labelled id and label (CloudWatch's result label). Results are asked in
// ascending time; a page's results are appended to those of the same Id. CloudWatch's
// EndTime is exclusive: the period starting at Query.End is not asked for.
package cloudwatch
