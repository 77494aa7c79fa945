package benchmarks

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	cw "github.com/canaryd/canaryd/metrics/cloudwatch"
	"github.com/canaryd/canaryd/metrics/cloudwatch/cwtest"
)

// cwStreams results of benchPoints points each: moto computes each period in Python over
// every stored datum, so more would take minutes to record.
const cwStreams = 4

// BenchmarkCloudWatchDecode is the CloudWatch provider's cost per point after the network:
// the SDK's AWS JSON 1.0 decoding of a GetMetricData answer recorded from moto (a day at
// 1m, cwStreams results) and the conversion to metrics.Series, replayed by an httptest
// server as BenchmarkPrometheusQuery/decode replays Prometheus' answer.
func BenchmarkCloudWatchDecode(b *testing.B) {
	if testing.Short() {
		b.Skip("starts moto")
	}
	motoURL := cwtest.Start(b, cwtest.Options{})
	end := time.Now().Truncate(time.Minute)
	start := end.Add(-benchPoints * time.Minute)
	put := cloudwatch.New(cloudwatch.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(motoURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "secret", ""),
	}, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		o.DisableRequestCompression = true
	})
	for lo := 0; lo < benchPoints; lo += 1000 {
		var data []types.MetricDatum
		for i := lo; i < min(lo+1000, benchPoints); i++ {
			data = append(data, types.MetricDatum{
				MetricName: aws.String("Latency"), Timestamp: aws.Time(start.Add(time.Duration(i) * time.Minute)),
				Value: aws.Float64(float64(i%1000) / 7), Dimensions: []types.Dimension{{Name: aws.String("Track"), Value: aws.String("canary")}},
			})
		}
		if _, err := put.PutMetricData(b.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Bench"), MetricData: data}); err != nil {
			b.Fatal(err)
		}
	}
	var qs []string
	for i := range cwStreams {
		qs = append(qs, fmt.Sprintf(`{"Id": "s%d", "MetricStat": {"Stat": "Average", "Metric": {"Namespace": "Bench", "MetricName": "Latency",
		  "Dimensions": [{"Name": "Track", "Value": "canary"}]}}}`, i))
	}
	q := metrics.Query{Text: "[" + strings.Join(qs, ",") + "]", Start: start, End: end, Step: time.Minute}

	var body []byte
	if s, err := newCloudWatch(b, recordThrough(b, motoURL, &body)).Query(b.Context(), q); err != nil || s.Len() != cwStreams*benchPoints {
		b.Fatalf("record: %d points, %v", s.Len(), err)
	}
	benchDecode(b, newCloudWatch(b, replayAnswer(b, "application/x-amz-json-1.0", body)), q, cwStreams*benchPoints, len(body))
}

func newCloudWatch(b *testing.B, endpoint string) *cw.Provider {
	cfg := cw.DefaultConfig()
	cfg.Region, cfg.Endpoint, cfg.Retries = "us-east-1", endpoint, 0
	cfg.AccessKeyID, cfg.SecretAccessKey = "AKIAIOSFODNN7EXAMPLE", commoncfg.Secret("secret")
	p, err := cw.New(cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return p
}
