// Package app builds what a function needs once per cold start (the
// configuration, the logger, the AWS configuration, secrets, the Acronis
// client) and the handler of each function from it. functions/*/main.go only
// name their function and its handler; tests build handlers here exactly as
// production does.
package app
