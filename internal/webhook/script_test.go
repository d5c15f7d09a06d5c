//go:build integration

package webhook_test

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"acronismfa/internal/testkit"
	"acronismfa/internal/webhook"
)

// TestReadmeScriptSignsAsVerified runs the README's example sender and checks
// that its signature is one the webhook accepts, and only for the body it signed.
func TestReadmeScriptSignsAsVerified(t *testing.T) {
	for _, tool := range []string{"bash", "openssl", "od", "base64", "date"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("scripts/webhook-call.sh needs %s, which is not on PATH: %v", tool, err)
		}
	}
	key := []byte("a signing key of 24 bytes")
	body := `{"enabled": true}`
	cmd := exec.Command("bash", "../../scripts/webhook-call.sh", "PUT", "https://example.invalid/tenants/x/mfa", body)
	cmd.Env = append(cmd.Environ(), "PRINT_ONLY=1", "WEBHOOK_KEY="+testkit.WhSec(key))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("script: %v: %s", err, out)
	}
	headers := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, value, _ := strings.Cut(line, ": ")
		headers[name] = value
	}
	// The script stamps its own clock's time; the check is of the signature.
	ts, err := strconv.ParseInt(headers["webhook-timestamp"], 10, 64)
	if err != nil {
		t.Fatalf("webhook-timestamp %q: %v", headers["webhook-timestamp"], err)
	}
	verify := func(b string) error {
		return webhook.Verify([][]byte{key}, headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], []byte(b), time.Unix(ts, 0))
	}
	if err := verify(body); err != nil {
		t.Fatalf("the script's signature is refused: %v (headers %v)", err, headers)
	}
	if err := verify(`{"enabled": false}`); err == nil {
		t.Fatal("the script's signature also verifies another body")
	}
}
