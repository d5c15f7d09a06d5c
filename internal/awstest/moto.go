// Package awstest starts moto_server, a real AWS emulator, for tests that exercise
// the AWS SDK end to end without an AWS account. It is imported by tests only.
package awstest

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Region is the region every test resource lives in.
const Region = "us-east-1"

// Moto starts a moto_server on a free loopback port for the duration of the test
// and returns its endpoint URL. It fails the test, never skips it, when
// moto_server is not installed: a silently skipped AWS test proves nothing.
func Moto(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server is not on PATH: these tests need the AWS emulator (pip package moto[server]) preinstalled: %v", err)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start moto_server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 30s: %v", endpoint, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Env points the AWS SDK of this process at endpoint with dummy credentials and
// no shared config, for the rest of the test.
func Env(t testing.TB, endpoint string) {
	t.Helper()
	for k, v := range EnvVars(endpoint) {
		t.Setenv(k, v)
	}
}

// EnvVars are the variables that point an SDK process (a built function under the
// Runtime Interface Emulator, say) at endpoint.
func EnvVars(endpoint string) map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":            endpoint,
		"AWS_REGION":                  Region,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_SESSION_TOKEN":           "",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
}

// Config returns an SDK configuration aimed at endpoint, for test setup code.
func Config(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(Region),
		config.WithBaseEndpoint(endpoint),
		config.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
		})),
	)
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	return cfg
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Reset empties moto between tests that share one server.
func Reset(t testing.TB, endpoint string) {
	t.Helper()
	resp, err := http.Post(endpoint+"/moto-api/reset", "application/json", nil)
	if err != nil {
		t.Fatalf("reset moto: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reset moto: HTTP %d", resp.StatusCode)
	}
}
