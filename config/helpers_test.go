package config

import "github.com/canaryd/canaryd/metrics"

func templateData(track string) metrics.TemplateData {
	return metrics.TemplateData{Cohort: map[string]string{"track": track}}
}
