package testkit

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLinesSplitsWritesIntoLines(t *testing.T) {
	var tee bytes.Buffer
	l := NewOutput(&tee)
	for _, chunk := range []string{"first li", "ne\nsecond\r\nthi", "rd"} {
		if n, err := l.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	if got := l.Lines(); !slices.Equal(got, []string{"first line", "second"}) {
		t.Errorf("Lines() = %q: a partial line must wait for its end", got)
	}
	mark := l.Mark()
	l.Write([]byte("\nfourth\n"))
	if got := l.Since(mark); !slices.Equal(got, []string{"third", "fourth"}) {
		t.Errorf("Since(mark) = %q, want the lines after the mark", got)
	}
	if tee.String() != "first line\nsecond\r\nthird\nfourth\n" {
		t.Errorf("tee got %q", tee.String())
	}
}

func TestLinesWait(t *testing.T) {
	l := NewOutput(nil)
	l.Write([]byte("old EMF {\"_aws\":{}}\n"))
	mark := l.Mark()
	go l.Write([]byte("{\"message\":\"x\"}\n{\"_aws\":{}}\n"))
	got, err := l.Wait(context.Background(), mark, 5*time.Second, IsEMF)
	if err != nil || got != `{"_aws":{}}` {
		t.Errorf("Wait = %q, %v", got, err)
	}
	start := time.Now()
	if _, err := l.Wait(context.Background(), l.Mark(), 50*time.Millisecond, IsEMF); err == nil {
		t.Error("Wait found a line that was never written")
	}
	if time.Since(start) > 5*time.Second {
		t.Error("Wait ignored its timeout")
	}
}

func TestParseEMF(t *testing.T) {
	line := `{"Function":"sweep","Trigger":"schedule","TenantsChanged":3,"SweepDurationMs":12,` +
		`"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Function","Trigger"]],` +
		`"Metrics":[{"Name":"TenantsChanged","Unit":"Count"},{"Name":"SweepDurationMs","Unit":"Milliseconds"}]}]}}`
	e, err := ParseEMF(line)
	if err != nil {
		t.Fatal(err)
	}
	if e.Namespace != "NS" || e.Dimension("Function") != "sweep" || e.Dimension("Trigger") != "schedule" ||
		e.Metrics["TenantsChanged"] != 3 || e.Units["SweepDurationMs"] != "Milliseconds" ||
		!slices.Equal(e.Order, []string{"TenantsChanged", "SweepDurationMs"}) {
		t.Errorf("ParseEMF = %+v", e)
	}
	for name, bad := range map[string]string{
		"declared metric without a value": strings.Replace(line, `"TenantsChanged":3,`, "", 1),
		"dimension without a value":       strings.Replace(line, `"Trigger":"schedule",`, "", 1),
		"no timestamp":                    strings.Replace(line, `"Timestamp":1,`, "", 1),
		"not EMF":                         `{"message":"hello"}`,
	} {
		if _, err := ParseEMF(bad); err == nil {
			t.Errorf("%s: ParseEMF accepted %s", name, bad)
		}
	}
}

func TestFindRIENamesTheInstallCommand(t *testing.T) {
	t.Setenv("AWS_LAMBDA_RIE", t.TempDir()+"/no-such-rie")
	_, err := FindRIE()
	if err == nil || !strings.Contains(err.Error(), "go install "+RIEPackage) {
		t.Errorf("FindRIE() error %v, want one that says how to install it", err)
	}
}

// The emulator pinned here is the one the Makefile installs.
func TestRIEPackageMatchesMakefile(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), RIEPackage) {
		t.Errorf("the Makefile does not install %s: keep RIEPackage and RIE_PKG in step", RIEPackage)
	}
}

// Without $AWS_LAMBDA_RIE, the emulator is where `go install` put it.
func TestFindRIEInGOPATH(t *testing.T) {
	gopath := t.TempDir()
	want := filepath.Join(gopath, "bin", "aws-lambda-rie")
	if err := os.MkdirAll(filepath.Dir(want), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(want, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_LAMBDA_RIE", "")
	t.Setenv("GOBIN", "")
	t.Setenv("GOPATH", gopath)
	if got, err := FindRIE(); got != want || err != nil {
		t.Errorf("FindRIE() = %q, %v; want %q", got, err, want)
	}
}
