package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// MotoRegion is the region of everything created in a Moto started here.
const MotoRegion = "us-east-1"

// Moto is a moto_server (a real AWS emulator) child process on a loopback port.
type Moto struct {
	Endpoint string
	proc     *process
}

// StartMoto starts moto_server from PATH on a free loopback port, its output to
// out (nil: discarded), and returns once it answers.
func StartMoto(ctx context.Context, out io.Writer) (*Moto, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, errors.New("moto_server is not on PATH: it comes with the machine image (Python package moto[server]) and cannot be installed from here")
	}
	if out == nil {
		out = io.Discard
	}
	var lastErr error
	for range startAttempts {
		ports, err := FreePorts(1)
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(ports[0]))
		cmd.Env = append(os.Environ(), "MOTO_ALLOW_NONEXISTENT_REGION=true")
		p, err := startProcess(cmd, out)
		if err != nil {
			return nil, fmt.Errorf("start moto_server: %w", err)
		}
		m := &Moto{Endpoint: "http://127.0.0.1:" + strconv.Itoa(ports[0]), proc: p}
		client := &http.Client{Timeout: time.Second}
		err = p.waitReady(ctx, 30*time.Second, "moto_server", func() error {
			resp, err := client.Get(m.Endpoint + "/moto-api/")
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
		if err == nil {
			return m, nil
		}
		p.stop()
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("moto_server did not start: %w", lastErr)
}

// NewMoto starts a moto_server for the duration of the test. It fails the
// test, never skips it, when moto_server is not installed: a silently skipped
// AWS test proves nothing.
func NewMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := StartMoto(t.Context(), nil)
	if err != nil {
		t.Fatalf("%v: these tests need the AWS emulator", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// Setenv points the AWS SDK of this process at m for the rest of the test.
func (m *Moto) Setenv(t testing.TB) {
	t.Helper()
	for k, v := range m.Env() {
		t.Setenv(k, v)
	}
}

// Reset empties moto between tests that share one server.
func (m *Moto) Reset(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Endpoint+"/moto-api/reset", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reset moto: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset moto: HTTP %d", resp.StatusCode)
	}
	return nil
}

// Stop ends moto_server. It is safe to call more than once.
func (m *Moto) Stop() { m.proc.stop() }

// Env is the environment that points an AWS SDK process (a function under the
// emulator) at this Moto with dummy credentials and no shared configuration.
func (m *Moto) Env() map[string]string {
	return map[string]string{
		"AWS_ENDPOINT_URL":            m.Endpoint,
		"AWS_REGION":                  MotoRegion,
		"AWS_ACCESS_KEY_ID":           "testing",
		"AWS_SECRET_ACCESS_KEY":       "testing",
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	}
}

// Config is an SDK configuration aimed at this Moto, for setup code.
func (m *Moto) Config(ctx context.Context) (aws.Config, error) {
	return awsconfig.LoadDefaultConfig(ctx,
		awsconfig.WithRegion(MotoRegion),
		awsconfig.WithBaseEndpoint(m.Endpoint),
		awsconfig.WithSharedConfigFiles([]string{}),
		awsconfig.WithSharedCredentialsFiles([]string{}),
		awsconfig.WithCredentialsProvider(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "testing", SecretAccessKey: "testing"}, nil
		})),
	)
}

// MotoConfig is an SDK configuration aimed at the moto_server at endpoint, for
// test setup code.
func MotoConfig(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	cfg, err := (&Moto{Endpoint: endpoint}).Config(t.Context())
	if err != nil {
		t.Fatalf("aws config: %v", err)
	}
	return cfg
}
