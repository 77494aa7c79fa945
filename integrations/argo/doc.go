// Package argo holds the tests that drive a live canaryd with Argo Rollouts' own metric
// provider code (metricproviders/webmetric and metricproviders/kayenta), on the
// AnalysisTemplates of examples/argo-rollouts. It is a module of its own so that
// canaryd's module never depends on Argo's or Kubernetes' libraries; it has no code
// besides its tests.
package argo
