package cloudwatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
)

// maxQueries is GetMetricData's limit on MetricDataQueries in one call.
const maxQueries = 500

// The JSON shape of a MetricDataQuery, as the AWS CLI takes it.
type (
	dataQuery struct {
		ID         string      `json:"Id"`
		Expression string      `json:"Expression"`
		Label      string      `json:"Label"`
		MetricStat *metricStat `json:"MetricStat"`
		Period     int32       `json:"Period"`
		ReturnData *bool       `json:"ReturnData"`
		AccountID  string      `json:"AccountId"`
	}
	metricStat struct {
		Metric metric `json:"Metric"`
		Period int32  `json:"Period"`
		Stat   string `json:"Stat"`
		Unit   string `json:"Unit"`
	}
	metric struct {
		Namespace  string      `json:"Namespace"`
		MetricName string      `json:"MetricName"`
		Dimensions []dimension `json:"Dimensions"`
	}
	dimension struct {
		Name  string `json:"Name"`
		Value string `json:"Value"`
	}
)

// parseQuery turns a rendered query into MetricDataQueries (see the package doc).
func parseQuery(text string, step time.Duration) ([]types.MetricDataQuery, error) {
	period := int32(step / time.Second)
	if step%time.Second != 0 || period < 1 {
		return nil, fmt.Errorf("step %s: CloudWatch periods are whole seconds (1, 5, 10, 30 or a multiple of 60)", step)
	}
	text = strings.TrimSpace(text)
	var qs []dataQuery
	switch {
	case strings.HasPrefix(text, "["):
		if err := decodeStrict(text, &qs); err != nil {
			return nil, err
		}
	case strings.HasPrefix(text, "{"):
		var q dataQuery
		if err := decodeStrict(text, &q); err != nil {
			return nil, err
		}
		qs = []dataQuery{q}
	default:
		qs = []dataQuery{{ID: "q", Expression: text}}
	}
	if len(qs) == 0 {
		return nil, errors.New("no MetricDataQueries")
	}
	if len(qs) > maxQueries {
		return nil, fmt.Errorf("%d MetricDataQueries, GetMetricData takes at most %d", len(qs), maxQueries)
	}
	out := make([]types.MetricDataQuery, 0, len(qs))
	for i, q := range qs {
		if q.ID == "" {
			return nil, fmt.Errorf("[%d]: Id is required", i)
		}
		if (q.Expression == "") == (q.MetricStat == nil) {
			return nil, fmt.Errorf("[%d] %q: give exactly one of Expression and MetricStat", i, q.ID)
		}
		dq := types.MetricDataQuery{Id: aws.String(q.ID), ReturnData: q.ReturnData}
		if q.Label != "" {
			dq.Label = aws.String(q.Label)
		}
		if q.AccountID != "" {
			dq.AccountId = aws.String(q.AccountID)
		}
		if q.MetricStat != nil {
			ms := q.MetricStat
			if ms.Metric.Namespace == "" || ms.Metric.MetricName == "" || ms.Stat == "" {
				return nil, fmt.Errorf("[%d] %q: MetricStat needs Metric.Namespace, Metric.MetricName and Stat", i, q.ID)
			}
			p := ms.Period
			if p == 0 {
				p = period
			}
			stat := &types.MetricStat{
				Metric: &types.Metric{Namespace: aws.String(ms.Metric.Namespace), MetricName: aws.String(ms.Metric.MetricName)},
				Period: aws.Int32(p),
				Stat:   aws.String(ms.Stat),
			}
			for _, d := range ms.Metric.Dimensions {
				stat.Metric.Dimensions = append(stat.Metric.Dimensions, types.Dimension{Name: aws.String(d.Name), Value: aws.String(d.Value)})
			}
			if ms.Unit != "" {
				stat.Unit = types.StandardUnit(ms.Unit)
			}
			dq.MetricStat = stat
		} else {
			dq.Expression = aws.String(q.Expression)
			p := q.Period
			if p == 0 {
				p = period
			}
			dq.Period = aws.Int32(p)
		}
		out = append(out, dq)
	}
	return out, nil
}

func decodeStrict(text string, v any) error {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("not a MetricDataQuery list: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("not a MetricDataQuery list: text after the JSON value")
	}
	return nil
}
