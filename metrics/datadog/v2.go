package datadog

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"go.uber.org/zap"

	"github.com/canaryd/canaryd/metrics"
	"github.com/canaryd/canaryd/metrics/datadog/internal/v2query"
)

// operationV2 is the client's name for the V2 timeseries endpoint, for its server
// templates (the same as V1's for every site).
const operationV2 = "v2.MetricsApi.QueryTimeseriesData"

// queryV2 runs q through POST /api/v2/query/timeseries: a query written as JSON
// ({"queries": […], "formulas": […]}), or any query when query_api is v2. The step is the
// request's interval; nothing is written into the queries. The request goes through the
// official client's common layer (its server templates, keys, user agent and transport),
// with the request and answer shaped in v2query after the documented API: the client's
// typed datadogV2 package is not imported (see the package doc).
func (p *Provider) queryV2(ctx context.Context, q metrics.Query) (metrics.Series, error) {
	spec, err := v2query.ParseSpec(q.Text)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("datadog: bad query: %w", err)
	}
	return p.runV2(ctx, spec, q, q.Text)
}

// runV2 sends spec over q's window at q's step; text names it in logs and errors.
func (p *Provider) runV2(ctx context.Context, spec v2query.Spec, q metrics.Query, text string) (metrics.Series, error) {
	req := v2query.NewRequest(spec, q.Start, q.End, q.Step)
	log := p.logger.With(zap.String("query", text), zap.Int64("from", req.Data.Attributes.From), zap.Int64("to", req.Data.Attributes.To))
	var body []byte
	attempts, err := p.do(ctx, log, text, func(ctx context.Context) (*http.Response, error) {
		var httpResp *http.Response
		var err error
		body, httpResp, err = p.postV2(ctx, req)
		return httpResp, err
	})
	if err != nil {
		return metrics.Series{}, err
	}
	series, err := v2query.Decode(body)
	if err != nil {
		return metrics.Series{}, fmt.Errorf("datadog: query %q: %w", text, err)
	}
	series = dropOutside(series, req.Data.Attributes.From, req.Data.Attributes.To)
	log.Debug("datadog query done", zap.String("api", "v2"), zap.Int("attempts", attempts), zap.Int("queries", len(spec.Queries)),
		zap.Int("streams", len(series.Streams)), zap.Int("points", series.Len()))
	return series, nil
}

// postV2 is one POST /api/v2/query/timeseries, with the errors the generated endpoints
// return (a GenericOpenAPIError with the body for a status >= 300), so that classify
// treats both endpoints alike.
func (p *Provider) postV2(ctx context.Context, body v2query.Request) ([]byte, *http.Response, error) {
	c := p.api.Client
	base, err := c.Cfg.ServerURLWithContext(ctx, operationV2)
	if err != nil {
		return nil, nil, datadog.GenericOpenAPIError{ErrorMessage: err.Error()}
	}
	headers := map[string]string{"Content-Type": "application/json", "Accept": "application/json"}
	datadog.SetAuthKeys(ctx, &headers, [2]string{"apiKeyAuth", "DD-API-KEY"}, [2]string{"appKeyAuth", "DD-APPLICATION-KEY"})
	req, err := c.PrepareRequest(ctx, base+"/api/v2/query/timeseries", http.MethodPost, &body, headers, url.Values{}, url.Values{}, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.CallAPI(req)
	if err != nil || resp == nil {
		return nil, resp, err
	}
	b, err := datadog.ReadBody(resp)
	if err != nil {
		return nil, resp, err
	}
	if resp.StatusCode >= 300 {
		return nil, resp, datadog.GenericOpenAPIError{ErrorBody: b, ErrorMessage: resp.Status}
	}
	return b, resp, nil
}
