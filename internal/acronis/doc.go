// Package acronis is the client of the Acronis Account Management API v2: access
// tokens, tenant listings, user listings and the tenant MFA switch. Every
// failure leaves this package as one of the error classes in errors.go, so all
// triggers map them alike.
package acronis
