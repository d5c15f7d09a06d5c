package webhook

import (
	"bytes"
	"encoding/base64"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestReadmeScriptSignsAsVerified runs the README's example sender and checks
// that its signature is one the webhook accepts, and only for the body it signed.
func TestReadmeScriptSignsAsVerified(t *testing.T) {
	key := []byte("a signing key of 24 bytes")
	body := `{"enabled": true}`
	cmd := exec.Command("bash", "../../scripts/webhook-call.sh", "PUT", "https://example.invalid/tenants/x/mfa", body)
	cmd.Env = append(cmd.Environ(), "PRINT_ONLY=1", "WEBHOOK_KEY=whsec_"+base64.StdEncoding.EncodeToString(key))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script: %v: %s", err, stderr.String())
	}
	headers := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, value, _ := strings.Cut(line, ": ")
		headers[name] = value
	}
	verify := func(b string) error {
		return Verify([][]byte{key}, headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"], []byte(b), time.Now())
	}
	if err := verify(body); err != nil {
		t.Fatalf("the script's signature is refused: %v (headers %v)", err, headers)
	}
	if err := verify(`{"enabled": false}`); err == nil {
		t.Fatal("the script's signature also verifies another body")
	}
}
