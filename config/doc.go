// Package config owns canaryd's config file: the schema's Go types, their defaults,
// strict decoding and validation with the path of every error. It knows no backend: the
// provider and actuator types a file may name are Kinds passed in (the binary registers
// them in cmd/canaryd/kinds.go). The example files live in the top-level configs/ folder
// (YAML only; cmd/canaryd's tests check each). It never starts anything: building a
// provider or an actuator from its config is the only side effect it offers, and only
// when asked.
package config
