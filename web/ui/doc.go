// Package ui serves canaryd's HTML report pages: the list of canaries (GET /) and one
// canary's report (GET /canaries/{id}), with charts drawn as inline SVG on the server,
// and with an Operator the report's abort and promote forms (CSRF-tokened). Handler.Register
// puts each page on package web's router with the role it needs. It reads through the
// small Source interface, never loads anything from another origin, and never computes a
// verdict or a statistic itself.
package ui
