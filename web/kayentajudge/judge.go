// Package kayentajudge serves Kayenta's remote judge: POST /judge at the server root,
// as Kayenta's RemoteJudge calls it (its canaryConfig, scoreThresholds and
// metricSetPairList in, a CanaryJudgeResult out, in Kayenta's shapes), so that Kayenta
// keeps its fetching, storage and UI and canaryd judges. The canary config is read by
// config/kayenta, each pair judged by canaryd's judge with Kayenta's semantics and
// scored by its rules. Bodies are read leniently (unknown fields are ignored, as Kayenta
// does); it stores nothing and touches no canary.
package kayentajudge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/canaryd/canaryd/config/kayenta"
	"github.com/canaryd/canaryd/judge"
	"github.com/canaryd/canaryd/web/auth"
)

// JudgeName is the judgeName of every result.
const JudgeName = "canaryd"

// Integration is the key of server.auth.route_tokens for this route: Kayenta's remote
// judge client sends no token.
const Integration = "kayenta"

// DefaultMaxBody caps a request: the metric data of a long canary, far above the API's
// server.max_body_bytes.
const DefaultMaxBody = 16 << 20

// Router registers a route with the access it needs; *auth.Router is one.
type Router interface {
	Handle(pattern string, a auth.Access, h http.Handler)
}

// Options configure the route.
type Options struct {
	Logger *zap.Logger
	// MaxBody caps a request body (default DefaultMaxBody).
	MaxBody int64
}

// Handler is the remote-judge route.
type Handler struct{ o Options }

// New returns the route; Register puts it on the daemon's router.
func New(o Options) *Handler {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	return &Handler{o: o}
}

// Access is the route's: read, held by a header token or, since Kayenta's client sends
// none, by the token server.auth.route_tokens.kayenta names.
var Access = auth.Webhook(auth.Read, Integration, "an Authorization header", func([]byte) string { return "" })

// Register registers POST /judge on r.
func (h *Handler) Register(r Router) {
	r.Handle("POST /judge", Access, http.HandlerFunc(h.judge))
}

// request is Kayenta's RemoteJudgeRequest.
type request struct {
	CanaryConfig      json.RawMessage  `json:"canaryConfig"`
	ScoreThresholds   *thresholds      `json:"scoreThresholds"`
	MetricSetPairList *[]metricSetPair `json:"metricSetPairList"`
}

type thresholds struct {
	Pass     *kayenta.Float `json:"pass"`
	Marginal *kayenta.Float `json:"marginal"`
}

// metricSetPair is Kayenta's MetricSetPair: the control's (baseline's) and the
// experiment's (canary's) values of one metric.
type metricSetPair struct {
	Name   *string            `json:"name"`
	ID     string             `json:"id"`
	Tags   map[string]string  `json:"tags"`
	Values map[string][]value `json:"values"`
}

// value is a point as Jackson writes a Double: a number, or "NaN", "Infinity",
// "-Infinity" as strings; null is a missing point too.
type value float64

func (v *value) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch string(b) {
	case "null", `"NaN"`:
		*v = value(math.NaN())
		return nil
	case `"Infinity"`:
		*v = value(math.Inf(1))
		return nil
	case `"-Infinity"`:
		*v = value(math.Inf(-1))
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("%.40s is not a number", b)
	}
	*v = value(f)
	return nil
}

// Kayenta's CanaryJudgeResult and its parts, as Kayenta's object mapper writes them.
type (
	judgeResult struct {
		JudgeName   string           `json:"judgeName"`
		Results     []analysisResult `json:"results"`
		GroupScores []groupScore     `json:"groupScores"`
		Score       summaryScore     `json:"score"`
	}
	analysisResult struct {
		Name                 string            `json:"name"`
		Tags                 map[string]string `json:"tags,omitempty"`
		ID                   string            `json:"id,omitempty"`
		Classification       string            `json:"classification"`
		ClassificationReason string            `json:"classificationReason,omitempty"`
		Groups               []string          `json:"groups"`
		ExperimentMetadata   map[string]any    `json:"experimentMetadata"`
		ControlMetadata      map[string]any    `json:"controlMetadata"`
		ResultMetadata       map[string]any    `json:"resultMetadata"`
		Critical             bool              `json:"critical"`
		Muted                bool              `json:"muted"`
	}
	groupScore struct {
		Name                 string  `json:"name"`
		Score                float64 `json:"score"`
		Classification       string  `json:"classification"`
		ClassificationReason string  `json:"classificationReason"`
	}
	summaryScore struct {
		Score                float64 `json:"score"`
		Classification       string  `json:"classification"`
		ClassificationReason string  `json:"classificationReason"`
	}
	// stats is Kayenta's MetricStatistics of a cohort's points as judged.
	stats struct {
		Min   number `json:"min"`
		Max   number `json:"max"`
		Mean  number `json:"mean"`
		Std   number `json:"std"`
		Count int    `json:"count"`
	}
)

// number is a float written as Jackson writes a Double: "NaN" and the infinities as
// strings.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// badRequest is a 4xx naming the field.
type badRequest struct{ field, msg string }

func (e *badRequest) Error() string { return e.field + ": " + e.msg }

func (h *Handler) judge(w http.ResponseWriter, r *http.Request) {
	var req request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.o.MaxBody)).Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Error: fmt.Sprintf("body larger than %d bytes", h.o.MaxBody)})
		case errors.As(err, &te) && te.Field != "":
			writeJSON(w, http.StatusBadRequest, errorBody{Field: te.Field, Error: fmt.Sprintf("%s: a JSON %s where Kayenta sends %s", te.Field, te.Value, te.Type)})
		default:
			writeJSON(w, http.StatusBadRequest, errorBody{Error: "body: " + err.Error()})
		}
		return
	}
	res, err := judgeRequest(req)
	if err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			writeJSON(w, http.StatusBadRequest, errorBody{Field: br.field, Error: br.Error()})
			return
		}
		h.o.Logger.Error("remote judge failed", zap.Error(err))
		writeJSON(w, http.StatusInternalServerError, errorBody{Error: err.Error()})
		return
	}
	h.o.Logger.Info("remote judge", zap.String("canary_config", res.config),
		zap.Int("metrics", len(res.Results)), zap.Float64("score", res.Score.Score), zap.String("classification", res.Score.Classification))
	writeJSON(w, http.StatusOK, res.judgeResult)
}

// result is a judgement with the config's name for the log.
type result struct {
	judgeResult
	config string
}

// judgeRequest judges a remote-judge request as NetflixACAJudge would, with canaryd's
// judge.
func judgeRequest(req request) (*result, error) {
	if len(bytes.TrimSpace(req.CanaryConfig)) == 0 || string(bytes.TrimSpace(req.CanaryConfig)) == "null" {
		return nil, &badRequest{"canaryConfig", "required"}
	}
	if req.ScoreThresholds == nil {
		return nil, &badRequest{"scoreThresholds", "required"}
	}
	if req.ScoreThresholds.Pass == nil {
		return nil, &badRequest{"scoreThresholds.pass", "required"}
	}
	if req.ScoreThresholds.Marginal == nil {
		return nil, &badRequest{"scoreThresholds.marginal", "required"}
	}
	pass, marginal := float64(*req.ScoreThresholds.Pass), float64(*req.ScoreThresholds.Marginal)
	if !(pass > 0 && pass <= 100) || !(marginal >= 0 && marginal <= pass) {
		return nil, &badRequest{"scoreThresholds", fmt.Sprintf("pass %v and marginal %v must be 0 <= marginal <= pass <= 100, pass > 0", pass, marginal)}
	}
	if req.MetricSetPairList == nil {
		return nil, &badRequest{"metricSetPairList", "required"}
	}
	cfg, err := kayenta.Parse(req.CanaryConfig)
	if err != nil {
		return nil, &badRequest{"canaryConfig", strings.TrimPrefix(err.Error(), "kayenta canary config: ")}
	}
	if len(cfg.Metrics) == 0 {
		return nil, &badRequest{"canaryConfig.metrics", "required: at least one metric"}
	}
	a, err := kayenta.Convert(cfg)
	if err != nil {
		return nil, &badRequest{"canaryConfig", err.Error()}
	}
	out := &result{config: cfg.Name, judgeResult: judgeResult{JudgeName: JudgeName, Results: []analysisResult{}, GroupScores: []groupScore{}}}
	var results []judge.MetricResult
	var s judge.Scratch
	for i, p := range *req.MetricSetPairList {
		at := fmt.Sprintf("metricSetPairList[%d]", i)
		if p.Name == nil {
			return nil, &badRequest{at + ".name", "required"}
		}
		j := slices.IndexFunc(cfg.Metrics, func(m kayenta.MetricConfig) bool { return m.Name == *p.Name })
		if j < 0 {
			return nil, &badRequest{at + ".name", fmt.Sprintf("%q is not a metric of canaryConfig", *p.Name)}
		}
		m := a.Metrics[j]
		if m.Invalid {
			return nil, &badRequest{fmt.Sprintf("canaryConfig.metrics[%d].analysisConfigurations.canary", j), m.Skip}
		}
		control, ok := p.Values["control"]
		if !ok {
			return nil, &badRequest{at + ".values.control", "required"}
		}
		experiment, ok := p.Values["experiment"]
		if !ok {
			return nil, &badRequest{at + ".values.experiment", "required"}
		}
		spec := m.Spec
		spec.Name = *p.Name
		b, c := floats(control), floats(experiment)
		mr := s.Classify(spec, b, c)
		results = append(results, mr)
		groups := cfg.Metrics[j].Groups
		if groups == nil {
			groups = []string{}
		}
		out.Results = append(out.Results, analysisResult{
			Name: *p.Name, Tags: p.Tags, ID: p.ID,
			Classification:       label(mr),
			ClassificationReason: mr.Reason,
			Groups:               groups,
			ExperimentMetadata:   map[string]any{"stats": summarize(c, spec.NaNStrategy)},
			ControlMetadata:      map[string]any{"stats": summarize(b, spec.NaNStrategy)},
			ResultMetadata:       map[string]any{"ratio": number(mr.KayentaRatio())},
			Critical:             mr.Critical && (mr.Failed() || mr.Unjudged()),
			Muted:                mr.Muted,
		})
	}
	sc := judge.Score(results, a.Groups, judge.Thresholds{Pass: pass, Marginal: marginal, Rules: judge.RulesKayenta})
	scored := map[string]float64{}
	for _, g := range sc.Groups {
		scored[g.Name] = g.Score
	}
	// Kayenta lists every group of the unmuted metrics, one with nothing to score at 0.
	seen := map[string]bool{}
	for i, mr := range results {
		if mr.Muted {
			continue
		}
		for _, g := range out.Results[i].Groups {
			if !seen[g] {
				seen[g] = true
				out.GroupScores = append(out.GroupScores, groupScore{Name: g, Score: scored[g]})
			}
		}
	}
	slices.SortFunc(out.GroupScores, func(x, y groupScore) int { return strings.Compare(x.Name, y.Name) })
	out.Score = summaryScore{Score: sc.Score, Classification: scoreLabel(sc), ClassificationReason: sc.Reason}
	return out, nil
}

func floats(v []value) []float64 {
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

// label is Kayenta's name for a metric's classification.
func label(r judge.MetricResult) string {
	switch r.Classification {
	case judge.ClassPass:
		return "Pass"
	case judge.ClassHigh:
		return "High"
	case judge.ClassLow:
		return "Low"
	case judge.ClassNoData:
		if r.MustHaveData && !r.Critical {
			return "NodataFailMetric"
		}
		return "Nodata"
	}
	return "Error"
}

// scoreLabel is Kayenta's summary classification: Pass, Marginal or Fail by the
// thresholds; canaryd's verdicts that are no pass (a critical metric failed or could not
// be judged, nothing could be scored) are a Fail.
func scoreLabel(sc judge.ScoreResult) string {
	switch sc.Verdict {
	case judge.VerdictPass:
		return "Pass"
	case judge.VerdictMarginal:
		return "Marginal"
	}
	return "Fail"
}

// summarize is Kayenta's MetricStatistics of the points as judged: missing points
// removed, or 0 under nan_strategy zero; all 0 for none.
func summarize(v []float64, nan judge.NaNStrategy) stats {
	var pts []float64
	for _, f := range v {
		switch {
		case !math.IsNaN(f) && !math.IsInf(f, 0):
			pts = append(pts, f)
		case nan == judge.NaNZero:
			pts = append(pts, 0)
		}
	}
	if len(pts) == 0 {
		return stats{}
	}
	st := stats{Min: number(pts[0]), Max: number(pts[0]), Count: len(pts)}
	sum := 0.0
	for _, f := range pts {
		sum += f
		st.Min, st.Max = number(math.Min(float64(st.Min), f)), number(math.Max(float64(st.Max), f))
	}
	mean := sum / float64(len(pts))
	ss := 0.0
	for _, f := range pts {
		ss += (f - mean) * (f - mean)
	}
	st.Mean = number(mean)
	if len(pts) > 1 {
		st.Std = number(math.Sqrt(ss / float64(len(pts)-1)))
	}
	return st
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}
