package cloudwatch_test

import (
	"context"
	"fmt"
	"math"
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

const (
	testKeyID  = "AKIAIOSFODNN7EXAMPLE"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

// putClient is a plain SDK client for writing test data into moto.
func putClient(endpoint, keyID, secret string) *cloudwatch.Client {
	return cloudwatch.New(cloudwatch.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
	}, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		o.DisableRequestCompression = true
	})
}

// putRequests writes one datum a minute for each value, at start+30s+i·1m, per track.
func putRequests(t *testing.T, c *cloudwatch.Client, start time.Time, track string, values []float64) {
	t.Helper()
	var data []types.MetricDatum
	for i, v := range values {
		data = append(data, types.MetricDatum{
			MetricName: aws.String("Requests"),
			Dimensions: []types.Dimension{{Name: aws.String("Service"), Value: aws.String("checkout")}, {Name: aws.String("Track"), Value: aws.String(track)}},
			Timestamp:  aws.Time(start.Add(30*time.Second + time.Duration(i)*time.Minute)),
			Value:      aws.Float64(v),
			Unit:       types.StandardUnitCount,
		})
	}
	if _, err := c.PutMetricData(t.Context(), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Canaryd/Test"), MetricData: data}); err != nil {
		t.Fatalf("PutMetricData: %v", err)
	}
}

func newProvider(t *testing.T, endpoint string, opts ...cw.Option) *cw.Provider {
	t.Helper()
	cfg := cw.DefaultConfig()
	cfg.Region = "us-east-1"
	cfg.Endpoint = endpoint
	cfg.AccessKeyID = testKeyID
	cfg.SecretAccessKey = commoncfg.Secret(testSecret)
	cfg.Retries = 0
	p, err := cw.New(cfg, zap.NewNop(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// statQuery is the JSON list a template renders for one track.
func statQuery(track string) string {
	return fmt.Sprintf(`[
	  {"Id": "m1", "ReturnData": false,
	   "MetricStat": {"Metric": {"Namespace": "Canaryd/Test", "MetricName": "Requests",
	     "Dimensions": [{"Name": "Service", "Value": "checkout"}, {"Name": "Track", "Value": %q}]},
	     "Stat": "Sum"}},
	  {"Id": "requests", "Expression": "m1", "Label": "requests"}
	]`, track)
}

func TestQueryMoto(t *testing.T) {
	url := cwtest.Start(t, cwtest.Options{})
	start := time.Now().Add(-time.Hour).Truncate(time.Minute)
	put := putClient(url, testKeyID, testSecret)
	putRequests(t, put, start, "stable", []float64{10, 12, 11, 13, 9})
	putRequests(t, put, start, "canary", []float64{20, 21, 19, 22, 18})
	p := newProvider(t, url)
	window := func(text string) metrics.Query {
		return metrics.Query{Text: text, Start: start, End: start.Add(5 * time.Minute), Step: time.Minute}
	}
	want := func(vs ...float64) []metrics.Point {
		var ps []metrics.Point
		for i, v := range vs {
			ps = append(ps, metrics.Point{T: start.Add(time.Duration(i) * time.Minute).UnixMilli(), V: v})
		}
		return ps
	}

	t.Run("values and timestamps", func(t *testing.T) {
		for track, vs := range map[string][]float64{"stable": {10, 12, 11, 13, 9}, "canary": {20, 21, 19, 22, 18}} {
			s, err := p.Query(t.Context(), window(statQuery(track)))
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Streams) != 1 {
				t.Fatalf("%s: %d streams, want 1 (m1 has ReturnData false): %+v", track, len(s.Streams), s.Streams)
			}
			st := s.Streams[0]
			if st.Labels["id"] != "requests" || st.Labels["label"] != "requests" {
				t.Errorf("%s: labels %v", track, st.Labels)
			}
			assertPoints(t, st.Points, want(vs...))
		}
	})
	t.Run("one object is a list of one", func(t *testing.T) {
		q := `{"Id": "r", "MetricStat": {"Metric": {"Namespace": "Canaryd/Test", "MetricName": "Requests",
		  "Dimensions": [{"Name": "Service", "Value": "checkout"}, {"Name": "Track", "Value": "canary"}]}, "Stat": "Maximum", "Period": 120}}`
		s, err := p.Query(t.Context(), window(q))
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Streams) != 1 {
			t.Fatalf("%d streams", len(s.Streams))
		}
		// Its own Period (2m) wins over the step: max of each pair of minutes.
		assertPoints(t, s.Streams[0].Points, []metrics.Point{
			{T: start.UnixMilli(), V: 21}, {T: start.Add(2 * time.Minute).UnixMilli(), V: 22}, {T: start.Add(4 * time.Minute).UnixMilli(), V: 18},
		})
	})
	t.Run("pages are merged", func(t *testing.T) {
		// moto answers in one page; the wrapper cuts its answer in two with a NextToken,
		// as CloudWatch does past 100,800 points.
		pager := &splitPages{api: putClient(url, testKeyID, testSecret)}
		pp := newProvider(t, url, cw.WithAPI(pager))
		s, err := pp.Query(t.Context(), window(statQuery("canary")))
		if err != nil {
			t.Fatal(err)
		}
		if pager.calls != 2 || pager.secondToken != "page-2" {
			t.Errorf("calls %d, second NextToken %q; want 2 and page-2", pager.calls, pager.secondToken)
		}
		if len(s.Streams) != 1 {
			t.Fatalf("%d streams", len(s.Streams))
		}
		assertPoints(t, s.Streams[0].Points, want(20, 21, 19, 22, 18))
	})
	t.Run("empty result", func(t *testing.T) {
		s, err := p.Query(t.Context(), window(statQuery("nobody")))
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 0 {
			t.Errorf("%d points, want none", s.Len())
		}
	})
	t.Run("bad query: server's message", func(t *testing.T) {
		q := window(statQuery("canary"))
		q.End = q.Start
		_, err := p.Query(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "cloudwatch: ") || !strings.Contains(err.Error(), "StartTime must not equal parameter EndTime") {
			t.Fatalf("err = %v, want moto's ValidationError", err)
		}
	})
	for _, tc := range []struct{ name, text, want string }{
		{"bad query: not JSON", `[{"Id": "m1",}]`, "not a MetricDataQuery list"},
		{"bad query: unknown key", `[{"Id": "m1", "Expresion": "m2"}]`, `unknown field "Expresion"`},
		{"bad query: both", `[{"Id": "m1", "Expression": "m2", "MetricStat": {"Metric": {"Namespace": "a", "MetricName": "b"}, "Stat": "Sum"}}]`, "exactly one of Expression and MetricStat"},
		{"bad query: no id", `[{"Expression": "m2"}]`, "Id is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.Query(t.Context(), window(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "cloudwatch: ") {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestAuthFailureMoto(t *testing.T) {
	url := cwtest.Start(t, cwtest.Options{Auth: true})
	p := newProvider(t, url)
	now := time.Now().Truncate(time.Minute)
	_, err := p.Query(t.Context(), metrics.Query{Text: statQuery("canary"), Start: now.Add(-5 * time.Minute), End: now, Step: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "InvalidClientTokenId") {
		t.Fatalf("err = %v, want moto's InvalidClientTokenId", err)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("the secret is in the error: %v", err)
	}
}

func TestServerDown(t *testing.T) {
	url := fmt.Sprintf("http://127.0.0.1:%d", cwtest.FreePort(t))
	p := newProvider(t, url)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	now := time.Now().Truncate(time.Minute)
	_, err := p.Query(ctx, metrics.Query{Text: statQuery("canary"), Start: now.Add(-5 * time.Minute), End: now, Step: time.Minute})
	if err == nil || !strings.HasPrefix(err.Error(), "cloudwatch: ") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v, want a cloudwatch error saying connection refused", err)
	}
}

// splitPages cuts the first answer in two pages, the second behind a NextToken.
type splitPages struct {
	api         cw.API
	calls       int
	rest        *cloudwatch.GetMetricDataOutput
	secondToken string
}

func (s *splitPages) GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, opts ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error) {
	s.calls++
	if in.NextToken != nil {
		s.secondToken = *in.NextToken
		return s.rest, nil
	}
	out, err := s.api.GetMetricData(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	first := &cloudwatch.GetMetricDataOutput{NextToken: aws.String("page-2")}
	s.rest = &cloudwatch.GetMetricDataOutput{}
	for _, r := range out.MetricDataResults {
		h := len(r.Values) / 2
		a, b := r, r
		a.Values, a.Timestamps, a.StatusCode = r.Values[:h], r.Timestamps[:h], types.StatusCodePartialData
		b.Values, b.Timestamps = r.Values[h:], r.Timestamps[h:]
		first.MetricDataResults = append(first.MetricDataResults, a)
		s.rest.MetricDataResults = append(s.rest.MetricDataResults, b)
	}
	return first, nil
}

func assertPoints(t *testing.T, got, want []metrics.Point) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d points %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].T != want[i].T || math.Abs(got[i].V-want[i].V) > 1e-9 {
			t.Errorf("point %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
