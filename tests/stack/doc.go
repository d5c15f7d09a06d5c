//go:build integration

// Package stack holds the tests of the deployment: the SAM template (template.yaml),
// its deploy config (samconfig.toml), the Makefile targets that `sam build` calls and
// the sample events in events/. It has no production code.
//
// The template is read with gopkg.in/yaml.v3, CloudFormation's short tags (!Ref,
// !GetAtt, !Sub, !If, ...) turned into their long forms, and evaluated for a set of
// parameter values by a small interpreter, so the checks compare what a deployed
// stack would hold: the secret a function reads is the one its role may read.
package stack
