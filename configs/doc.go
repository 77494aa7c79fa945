// Package configs owns canaryd's config file: the schema's Go types, their defaults,
// strict decoding and validation with the path of every error, and the example files in
// this folder (each *.yml is checked by the tests). It never starts anything: building a
// provider from its config is the only side effect it offers, and only when asked.
package configs
