package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/canaryd/canaryd/metrics/cloudwatch/cwtest"
)

// TestCloudWatchCanaries runs the daemon on moto's CloudWatch (issue 18, provider 1), the
// secret key read from a file: a canary three times slower fails, one drawn like the
// baseline passes, the secret is in no log line, and a cohort value that would add a
// SEARCH term is refused at registration, naming the field.
func TestCloudWatchCanaries(t *testing.T) {
	if testing.Short() {
		t.Skip("starts moto and the daemon")
	}
	const keyID, secret = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	motoURL := cwtest.Start(t, cwtest.Options{})
	put := cloudwatch.New(cloudwatch.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(motoURL),
		Credentials: credentials.NewStaticCredentialsProvider(keyID, secret, ""),
	}, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		o.DisableRequestCompression = true
	})
	now := time.Now().Truncate(time.Second)
	var data []types.MetricDatum
	latencySamples(now, 90, 0.1, func(track string, at time.Time, v float64) {
		data = append(data, types.MetricDatum{
			MetricName: aws.String("TargetResponseTime"), Timestamp: aws.Time(at), Value: aws.Float64(v),
			Dimensions: []types.Dimension{{Name: aws.String("Service"), Value: aws.String("web")}, {Name: aws.String("Track"), Value: aws.String(track)}},
		})
	})
	for lo := 0; lo < len(data); lo += 500 {
		if _, err := put.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Canaryd/Test"), MetricData: data[lo:min(lo+500, len(data))]}); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "aws-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := latencyConfig(fmt.Sprintf("{type: cloudwatch, region: us-east-1, endpoint: %q, access_key_id: %s, secret_access_key_file: %q, retries: 0}", motoURL, keyID, secretFile),
		40*time.Second, "seconds", `[{"Id": "latency", "MetricStat": {"Stat": "Average", "Metric": {"Namespace": "Canaryd/Test", "MetricName": "TargetResponseTime",
  "Dimensions": [{"Name": "Service", "Value": "{{ .Vars.app }}"}, {"Name": "Track", "Value": "{{ .Cohort.track }}"}]}}}]`)
	p, register := latencyDaemon(t, dir, "cw.yml", cfg, now.Add(-50*time.Second))

	refusedTrack(t, register, "canary Track=stable", "CloudWatch")
	slowFailsGoodPasses(t, p, register, 0.1, 90*time.Second)
	if strings.Contains(p.logs.String(), secret) {
		t.Error("the secret access key is in the daemon's log")
	}
}
