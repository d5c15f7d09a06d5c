// Package telemetry is what reaches CloudWatch: JSON log lines with Lambda's own
// key names, one audit line per tenant decision, and one Embedded Metric Format
// document per invocation.
package telemetry
