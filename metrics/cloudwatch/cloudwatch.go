package cloudwatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	commoncfg "github.com/prometheus/common/config"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/internal/redact"
	"github.com/canaryd/canaryd/metrics"
)

// API is the part of the CloudWatch client the provider calls.
type API interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// maxPages bounds one query's pagination: a query that needs more is far past what a
// cohort's judgement uses (CloudWatch pages hold up to 100,800 points).
const maxPages = 100

// Provider queries CloudWatch's GetMetricData. It is safe for concurrent use.
type Provider struct {
	cfg    Config
	api    API
	logger *zap.Logger
}

var _ metrics.Provider = (*Provider)(nil)

// Option changes a Provider built by New.
type Option func(*Provider)

// WithAPI replaces the client built from the config (tests wrap the real one).
func WithAPI(api API) Option { return func(p *Provider) { p.api = api } }

// New checks cfg, resolves where the credentials come from and builds the client once.
// Credentials themselves are fetched (and refreshed) by the SDK on the first query.
func New(cfg Config, logger *zap.Logger, opts ...Option) (*Provider, error) {
	if err := cfg.Validate().Err(); err != nil {
		return nil, fmt.Errorf("cloudwatch: config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	p := &Provider{cfg: cfg, logger: logger.With(zap.String("provider", "cloudwatch"), zap.String("region", cfg.Region))}
	for _, o := range opts {
		o(p)
	}
	if p.api == nil {
		awsCfg, err := loadAWSConfig(cfg)
		if err != nil {
			return nil, err
		}
		p.api = cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
			o.HTTPClient = bufferAnswers{next: o.HTTPClient}
			if cfg.Protocol == ProtocolJSON {
				o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
			}
			if cfg.Endpoint != "" {
				o.BaseEndpoint = aws.String(cfg.Endpoint)
			}
		})
	}
	p.logger.Debug("cloudwatch provider ready", zap.String("endpoint", redact.URL(cfg.Endpoint)),
		zap.Bool("static_keys", cfg.AccessKeyID != ""), zap.String("role_arn", cfg.RoleARN))
	return p, nil
}

func loadAWSConfig(cfg Config) (aws.Config, error) {
	// Without http_config keys, the SDK's own client (which honours AWS_CA_BUNDLE);
	// with them, the client Prometheus' libraries build from them.
	var httpClient aws.HTTPClient = awshttp.NewBuildableClient().WithTimeout(time.Duration(cfg.Timeout))
	if !reflect.DeepEqual(cfg.HTTPClientConfig, commoncfg.DefaultHTTPClientConfig) {
		if os.Getenv("AWS_CA_BUNDLE") != "" {
			return aws.Config{}, errors.New("cloudwatch: http_config: AWS_CA_BUNDLE is set: with http_config keys, give the CA as tls_config.ca_file")
		}
		c, err := commoncfg.NewClientFromConfig(cfg.HTTPClientConfig, "cloudwatch")
		if err != nil {
			return aws.Config{}, fmt.Errorf("cloudwatch: http_config: %w", err)
		}
		c.Timeout = time.Duration(cfg.Timeout)
		httpClient = c
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRegion(cfg.Region),
		awsconfig.WithHTTPClient(httpClient),
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = cfg.Retries + 1 })
		}),
	}
	if cfg.Profile != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.AccessKeyID != "" {
		secret := string(cfg.SecretAccessKey)
		if cfg.SecretAccessKeyFile != "" {
			b, err := os.ReadFile(cfg.SecretAccessKeyFile)
			if err != nil {
				return aws.Config{}, fmt.Errorf("cloudwatch: secret_access_key_file: %w", err)
			}
			secret = strings.TrimSpace(string(b))
			if secret == "" {
				return aws.Config{}, fmt.Errorf("cloudwatch: secret_access_key_file: %s is empty", cfg.SecretAccessKeyFile)
			}
		}
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, secret, "")))
	}
	// LoadDefaultConfig only reads files and the environment here; nothing is fetched.
	awsCfg, err := awsconfig.LoadDefaultConfig(context.Background(), loadOpts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("cloudwatch: AWS config: %w", err)
	}
	if cfg.RoleARN != "" {
		stsClient := sts.NewFromConfig(awsCfg, func(o *sts.Options) {
			if cfg.STSEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.STSEndpoint)
			}
		})
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, cfg.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = cfg.RoleSessionName
				if cfg.ExternalID != "" {
					o.ExternalID = aws.String(cfg.ExternalID)
				}
			}))
	}
	return awsCfg, nil
}

// StepAlignment is the grid CloudWatch's periods are on: it rounds a StartTime less
// than 15 days old down to the whole minute, and for a period under a minute (1, 5, 10,
// 20, 30 s) down to a multiple of the period, and starts each period there, so the
// counts and histogram judges need a canary whose steps start on that grid (the
// scheduler refuses others, naming the provider).
func (p *Provider) StepAlignment(step time.Duration) time.Duration {
	if step < time.Minute {
		return step
	}
	return time.Minute
}

// Query runs q's MetricDataQueries over [q.Start, q.End) and returns one stream per
// returned result, following NextToken.
func (p *Provider) Query(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	if err := q.Validate(); err != nil {
		return metrics.Series{}, fmt.Errorf("cloudwatch: %w", err)
	}
	queries, err := parseQuery(q.Text, q.Step)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("cloudwatch: query %q: %w", q.Text, err)
	}
	in := &cloudwatch.GetMetricDataInput{
		MetricDataQueries: queries,
		StartTime:         aws.Time(q.Start),
		EndTime:           aws.Time(q.End),
		ScanBy:            types.ScanByTimestampAscending,
	}
	var acc accumulator
	ctx, answer := withErrBody(ctx)
	for page := 1; ; page++ {
		out, err := p.api.GetMetricData(ctx, in)
		if err != nil {
			return metrics.Series{}, fmt.Errorf("cloudwatch: query %q: %w", q.Text, describe(err, answer))
		}
		if err := acc.add(out); err != nil {
			return metrics.Series{}, fmt.Errorf("cloudwatch: query %q: %w", q.Text, err)
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		if page == maxPages {
			return metrics.Series{}, fmt.Errorf("cloudwatch: query %q: more than %d pages; narrow the query", q.Text, maxPages)
		}
		in.NextToken = out.NextToken
	}
	s := acc.series()
	p.logger.Debug("cloudwatch query done", zap.String("query", q.Text),
		zap.Int("streams", len(s.Streams)), zap.Int("points", s.Len()))
	return s, nil
}

// describe puts CloudWatch's own words (its error code and message) first, or, when the
// SDK could not decode them, the answer as it came.
func describe(err error, answer *errBody) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s (%w)", ae.ErrorCode(), ae.ErrorMessage(), err)
	}
	if s := answer.String(); s != "" {
		return fmt.Errorf("%s (%w)", s, err)
	}
	return err
}

// accumulator merges the pages of one GetMetricData call.
type accumulator struct {
	order    []string
	byID     map[string]*metrics.Stream
	status   map[string]types.StatusCode
	warnings []string
}

func (a *accumulator) add(out *cloudwatch.GetMetricDataOutput) error {
	if a.byID == nil {
		a.byID = map[string]*metrics.Stream{}
		a.status = map[string]types.StatusCode{}
	}
	for _, m := range out.Messages {
		a.warnings = append(a.warnings, fmt.Sprintf("cloudwatch: %s: %s", aws.ToString(m.Code), aws.ToString(m.Value)))
	}
	for i := range out.MetricDataResults {
		r := &out.MetricDataResults[i]
		id := aws.ToString(r.Id)
		if len(r.Timestamps) != len(r.Values) {
			return fmt.Errorf("result %q: %d timestamps but %d values", id, len(r.Timestamps), len(r.Values))
		}
		switch r.StatusCode {
		case types.StatusCodeInternalError, types.StatusCodeForbidden:
			return fmt.Errorf("result %q: %s%s", id, r.StatusCode, messages(r.Messages))
		}
		for _, m := range r.Messages {
			a.warnings = append(a.warnings, fmt.Sprintf("cloudwatch: result %q: %s: %s", id, aws.ToString(m.Code), aws.ToString(m.Value)))
		}
		st := a.byID[id]
		if st == nil {
			st = &metrics.Stream{Labels: map[string]string{"id": id, "label": aws.ToString(r.Label)}}
			a.byID[id] = st
			a.order = append(a.order, id)
		}
		if st.Points == nil {
			st.Points = make([]metrics.Point, 0, len(r.Values))
		}
		for j, ts := range r.Timestamps {
			st.Points = append(st.Points, metrics.Point{T: ts.UnixMilli(), V: r.Values[j]})
		}
		a.status[id] = r.StatusCode
	}
	return nil
}

func messages(ms []types.MessageData) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, ": %s %s", aws.ToString(m.Code), aws.ToString(m.Value))
	}
	return b.String()
}

// series returns the streams in the order CloudWatch first returned them. A result still
// PartialData after the last page is kept, with a warning.
func (a *accumulator) series() metrics.Series {
	out := metrics.Series{Warnings: a.warnings}
	if len(a.order) > 0 {
		out.Streams = make([]metrics.Stream, 0, len(a.order))
	}
	for _, id := range a.order {
		if a.status[id] == types.StatusCodePartialData {
			out.Warnings = append(out.Warnings, fmt.Sprintf("cloudwatch: result %q: partial data", id))
		}
		out.Streams = append(out.Streams, *a.byID[id])
	}
	return out
}
