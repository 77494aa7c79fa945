// Package configs ships example canaryd config files. Every *.yml file in this folder is
// validated by the tests, so an example that drifts from the schema fails CI. No Go code
// lives here beyond the test that checks the files.
package configs
