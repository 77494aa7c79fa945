// Package config owns canaryd's config file: the schema's Go types, their defaults,
// strict decoding and validation with the path of every error. The example files live in
// the top-level configs/ folder (YAML only; cmd/canaryd's tests check each). It never
// starts anything: building a provider from its config is the only side effect it offers,
// and only when asked.
package config
