// Package report writes the compliance report of a full sweep (docs/reference.md,
// Compliance reports): one CSV row per listed tenant, safe to open in a
// spreadsheet, streamed to S3 as the sweep goes so that its memory does not
// grow with the fleet. The command line writes the same rows to a file.
package report
