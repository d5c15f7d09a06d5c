package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"acronismfa/internal/acronis"
	"acronismfa/internal/testkit"
)

// fakeSM answers GetSecretValue from a list of values (the last one repeats),
// or with err. While gate is set, each call waits for it to close.
type fakeSM struct {
	mu     sync.Mutex
	calls  int
	values []string
	err    error
	binary bool
	gate   chan struct{}
}

// withSecrets is a fakeSM serving Acronis credentials whose client secrets are
// these, one per read.
func withSecrets(clientSecrets ...string) *fakeSM {
	sm := &fakeSM{}
	for _, s := range clientSecrets {
		sm.values = append(sm.values, testkit.CredentialsJSON("https://dc.example", "client-1", s))
	}
	return sm
}

func (f *fakeSM) GetSecretValue(ctx context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	f.mu.Lock()
	f.calls++
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.binary {
		return &secretsmanager.GetSecretValueOutput{SecretBinary: []byte{1}}, nil
	}
	v := f.values[0]
	if len(f.values) > 1 {
		f.values = f.values[1:]
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(v)}, nil
}

func (f *fakeSM) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// closeGate lets every waiting and future call through once every goroutine of
// the bubble is blocked, one of them inside GetSecretValue.
func (f *fakeSM) closeGate() {
	go func() {
		synctest.Wait()
		close(f.gate)
	}()
}

// clientSecret reads the Acronis credentials secret "id" as the client does,
// cached or (fresh) re-read, and returns its client secret.
func clientSecretOf(ctx context.Context, s *Store, fresh bool) (string, error) {
	src := s.Acronis("id")
	read := src.Credentials
	if fresh {
		read = src.Refresh
	}
	c, err := read(ctx)
	return c.ClientSecret, err
}

// concurrently runs n calls of f at once and returns their results in order.
func concurrently(n int, f func() (string, error)) ([]string, []error) {
	vals, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { vals[i], errs[i] = f() })
	}
	wg.Wait()
	return vals, errs
}

// Eight callers on a cold cache share one read, and during an outage one
// failed read; a failure is not cached, so the next caller tries again.
func TestStoreColdCacheCostsOneRead(t *testing.T) {
	for name, sm := range map[string]*fakeSM{"healthy": withSecrets("v1"), "outage": {err: errors.New("connection reset")}} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sm.gate = make(chan struct{})
				s := NewStore(sm, time.Minute, nil)
				sm.closeGate()
				vals, errs := concurrently(8, func() (string, error) { return clientSecretOf(t.Context(), s, false) })
				for i := range vals {
					if sm.err == nil && (errs[i] != nil || vals[i] != "v1") || sm.err != nil && !errors.Is(errs[i], ErrSecretUnavailable) {
						t.Errorf("caller %d got %q, %v", i, vals[i], errs[i])
					}
				}
				if n := sm.Calls(); n != 1 {
					t.Fatalf("8 callers on a cold cache made %d GetSecretValue calls, want 1", n)
				}
				_, err := clientSecretOf(t.Context(), s, false)
				if want := map[bool]int{true: 1, false: 2}[sm.err == nil]; sm.Calls() != want || (err == nil) != (sm.err == nil) {
					t.Fatalf("the next caller got %v after %d calls, want %d calls", err, sm.Calls(), want)
				}
			})
		})
	}
}

func TestStoreConcurrentRefreshesShareOneNewRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := withSecrets("v1", "v2", "v3")
		s := NewStore(sm, time.Hour, nil)
		if v, err := clientSecretOf(t.Context(), s, false); v != "v1" || err != nil {
			t.Fatalf("warm-up got %q, %v", v, err)
		}
		sm.mu.Lock()
		sm.gate = make(chan struct{})
		sm.mu.Unlock()

		// A refresh is under way (it will read v2) when seven more callers ask for
		// a fresh value: it began before them, so they need a read of their own,
		// and they share it (v3).
		first := make(chan string)
		go func() {
			v, _ := clientSecretOf(t.Context(), s, true)
			first <- v
		}()
		synctest.Wait()
		sm.closeGate()
		vals, errs := concurrently(7, func() (string, error) { return clientSecretOf(t.Context(), s, true) })
		if v := <-first; v != "v2" {
			t.Errorf("first refresh got %q, want v2", v)
		}
		for i := range vals {
			if errs[i] != nil || vals[i] != "v3" {
				t.Errorf("caller %d got %q, %v; want v3", i, vals[i], errs[i])
			}
		}
		if n := sm.Calls(); n != 3 {
			t.Fatalf("%d GetSecretValue calls, want 3 (warm-up, first refresh, one shared refresh)", n)
		}
		if v, _ := clientSecretOf(t.Context(), s, false); v != "v3" {
			t.Fatalf("cache holds %q after the refreshes, want v3", v)
		}
	})
}

func TestStoreCanceledReaderDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := withSecrets("v1")
		sm.gate = make(chan struct{})
		s := NewStore(sm, time.Minute, nil)
		ctx, cancel := context.WithCancel(t.Context())
		firstErr := make(chan error)
		go func() {
			_, err := clientSecretOf(ctx, s, false)
			firstErr <- err
		}()
		synctest.Wait()
		second := make(chan string)
		go func() {
			v, _ := clientSecretOf(t.Context(), s, false)
			second <- v
		}()
		synctest.Wait()
		cancel()
		if err := <-firstErr; !errors.Is(err, context.Canceled) || !errors.Is(err, ErrSecretUnavailable) {
			t.Fatalf("canceled caller got %v", err)
		}
		synctest.Wait() // the second caller now reads for itself
		close(sm.gate)
		if v := <-second; v != "v1" {
			t.Fatalf("second caller got %q: it inherited the first caller's cancellation", v)
		}
	})
}

func TestStoreWaiterGivesUpAtItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := withSecrets("v1")
		sm.gate = make(chan struct{})
		s := NewStore(sm, time.Minute, nil)
		go func() { _, _ = clientSecretOf(t.Context(), s, false) }()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := clientSecretOf(ctx, s, false)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrSecretUnavailable) {
			t.Fatalf("waiter got %v, want its deadline as ErrSecretUnavailable", err)
		}
		close(sm.gate)
	})
}

func TestStoreTTL(t *testing.T) {
	clk := testkit.NewClock()
	s := NewStore(withSecrets("v1", "v2", "v3"), 0, clk.Now) // 0 means the default, 5 minutes
	steps := []struct {
		advance time.Duration
		fresh   bool
		want    string
	}{
		{0, false, "v1"},
		{DefaultTTL - time.Second, false, "v1"},
		{time.Second, false, "v2"},
		{time.Minute, true, "v3"},
		{DefaultTTL - time.Second, false, "v3"},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		if got, err := clientSecretOf(t.Context(), s, st.fresh); err != nil || got != st.want {
			t.Fatalf("step %d: got %q, %v; want %q", i, got, err, st.want)
		}
	}
}

// Every failure falls in exactly one class and names the secret, whichever
// reader reads it.
func TestStoreClassifiesFailures(t *testing.T) {
	msg := "Secrets Manager can't find the specified secret."
	key := testkit.WhSec([]byte("fifteen bytes!!"))
	readers := map[string]func(context.Context, *Store) error{
		"acronis": func(ctx context.Context, s *Store) error {
			_, err := s.Acronis("acronis-mfa/acronis").Credentials(ctx)
			return err
		},
		"webhook": func(ctx context.Context, s *Store) error {
			_, err := s.WebhookKeys(ctx, "acronis-mfa/acronis")
			return err
		},
	}
	tests := []struct {
		name   string
		sm     *fakeSM
		reader string // "" for both
		want   error
		says   string // in the error besides the secret's id
	}{
		{"not found", &fakeSM{err: &types.ResourceNotFoundException{Message: &msg}}, "", ErrSecretNotFound, ""},
		{"access denied", &fakeSM{err: errors.New("AccessDeniedException: not authorized")}, "", ErrSecretUnavailable, ""},
		{"decryption", &fakeSM{err: &types.DecryptionFailure{Message: aws.String("kms")}}, "", ErrSecretUnavailable, ""},
		{"binary secret", &fakeSM{binary: true}, "", ErrSecretMalformed, "binary"},
		{"Acronis field", &fakeSM{values: []string{testkit.CredentialsJSON("http://example.com", "id", clientSecret)}}, "acronis", ErrSecretMalformed, "base_url"},
		{"webhook key", &fakeSM{values: []string{keysJSON(key)}}, "webhook", ErrSecretMalformed, "signing_keys[0]"},
	}
	for _, tt := range tests {
		for name, read := range readers {
			if tt.reader != "" && tt.reader != name {
				continue
			}
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				err := read(t.Context(), NewStore(tt.sm, 0, nil))
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
				for _, other := range []error{ErrSecretNotFound, ErrSecretMalformed, ErrSecretUnavailable} {
					if other != tt.want && errors.Is(err, other) {
						t.Errorf("%v also matches %v", err, other)
					}
				}
				msg := err.Error()
				if !strings.Contains(msg, "acronis-mfa/acronis") || !strings.Contains(msg, tt.says) || strings.Count(msg, tt.want.Error()) != 1 {
					t.Errorf("error %q does not name the secret and say %q with its class once", msg, tt.says)
				}
				if strings.Contains(msg, clientSecret) || strings.Contains(msg, strings.TrimPrefix(key, "whsec_")) {
					t.Errorf("error leaks the secret: %q", msg)
				}
			})
		}
	}
}

func TestWebhookKeysFreshRereadsAtMostOnceAMinute(t *testing.T) {
	oldKey, newKey := []byte("old-key-of-24-bytes-long"), []byte("new-key-of-24-bytes-long")
	sm := &fakeSM{values: []string{testkit.WebhookKeysJSON(oldKey), testkit.WebhookKeysJSON(oldKey, newKey)}}
	clk := testkit.NewClock()
	s := NewStore(sm, 0, clk.Now)
	if _, err := s.WebhookKeys(t.Context(), "hooks"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance  time.Duration
		fresh    bool
		wantKeys int
		calls    int
	}{
		{30 * time.Second, true, 1, 1},  // read 30 s ago: too recent to read again
		{29 * time.Second, true, 1, 1},  // 59 s
		{time.Second, true, 2, 2},       // a minute: re-read, the new key is there
		{0, true, 2, 2},                 // and the re-read counts as the last read
		{10 * time.Second, false, 2, 2}, // the plain cache holds the new keys too
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		get := s.WebhookKeys
		if st.fresh {
			get = s.WebhookKeysFresh
		}
		keys, err := get(t.Context(), "hooks")
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(keys) != st.wantKeys || sm.Calls() != st.calls {
			t.Fatalf("step %d: %d keys after %d calls; want %d keys after %d calls", i, len(keys), sm.Calls(), st.wantKeys, st.calls)
		}
	}
}

// The command line's fixed credentials are what they were given, and no
// printing or log line shows their secret.
func TestStatic(t *testing.T) {
	creds := acronis.Credentials{BaseURL: "https://eu2-cloud.acronis.com", ClientID: "client-1", ClientSecret: clientSecret}
	s := Static(creds)
	got, err := s.Credentials(t.Context())
	again, rerr := s.Refresh(t.Context())
	if err != nil || rerr != nil || got != creds || again != creds {
		t.Fatalf("Credentials %v, %v; Refresh %v, %v", got, err, again, rerr)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("credentials", "creds", s)
	for _, shown := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), logged.String()} {
		if strings.Contains(shown, clientSecret) || !strings.Contains(shown, "client-1") {
			t.Errorf("%q shows the secret, or not the client id", shown)
		}
	}
}
