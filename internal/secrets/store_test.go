package secrets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
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

func (f *fakeSM) set(values ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values = values
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
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

func TestStoreColdCacheCostsOneRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := &fakeSM{values: []string{"v1"}, gate: make(chan struct{})}
		s := NewStore(sm, time.Minute, nil)
		go func() {
			synctest.Wait() // every caller is waiting, one of them inside GetSecretValue
			close(sm.gate)
		}()
		vals, errs := concurrently(8, func() (string, error) { return s.String(t.Context(), "id", false) })
		for i := range vals {
			if errs[i] != nil || vals[i] != "v1" {
				t.Errorf("caller %d got %q, %v", i, vals[i], errs[i])
			}
		}
		if n := sm.Calls(); n != 1 {
			t.Fatalf("8 callers on a cold cache made %d GetSecretValue calls, want 1", n)
		}
	})
}

func TestStoreOutageCostsOneReadPerWave(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := &fakeSM{err: errors.New("connection reset"), gate: make(chan struct{})}
		s := NewStore(sm, time.Minute, nil)
		go func() {
			synctest.Wait()
			close(sm.gate)
		}()
		_, errs := concurrently(8, func() (string, error) { return s.String(t.Context(), "id", false) })
		for i, err := range errs {
			if !errors.Is(err, ErrSecretUnavailable) {
				t.Errorf("caller %d got %v, want ErrSecretUnavailable", i, err)
			}
		}
		if n := sm.Calls(); n != 1 {
			t.Fatalf("8 callers during an outage made %d calls, want 1", n)
		}
		// A failure is not cached: the next caller tries again.
		if _, err := s.String(t.Context(), "id", false); err == nil {
			t.Fatal("the outage ended by itself")
		}
		if n := sm.Calls(); n != 2 {
			t.Fatalf("a caller after the failure made no call of its own (%d calls)", n)
		}
	})
}

func TestStoreConcurrentRefreshesShareOneNewRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := &fakeSM{values: []string{"v1", "v2", "v3"}}
		s := NewStore(sm, time.Hour, nil)
		if v, err := s.String(t.Context(), "id", false); v != "v1" || err != nil {
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
			v, _ := s.String(t.Context(), "id", true)
			first <- v
		}()
		synctest.Wait()
		go func() {
			synctest.Wait()
			close(sm.gate)
		}()
		vals, errs := concurrently(7, func() (string, error) { return s.String(t.Context(), "id", true) })
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
		if v, _ := s.String(t.Context(), "id", false); v != "v3" {
			t.Fatalf("cache holds %q after the refreshes, want v3", v)
		}
	})
}

func TestStoreCanceledReaderDoesNotFailOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sm := &fakeSM{values: []string{"v1"}, gate: make(chan struct{})}
		s := NewStore(sm, time.Minute, nil)
		ctx, cancel := context.WithCancel(t.Context())
		firstErr := make(chan error)
		go func() {
			_, err := s.String(ctx, "id", false)
			firstErr <- err
		}()
		synctest.Wait()
		second := make(chan string)
		go func() {
			v, _ := s.String(t.Context(), "id", false)
			second <- v
		}()
		synctest.Wait()
		cancel()
		err := <-firstErr
		if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrSecretUnavailable) {
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
		sm := &fakeSM{values: []string{"v1"}, gate: make(chan struct{})}
		s := NewStore(sm, time.Minute, nil)
		go func() { _, _ = s.String(t.Context(), "id", false) }()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		_, err := s.String(ctx, "id", false)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrSecretUnavailable) {
			t.Fatalf("waiter got %v, want its deadline as ErrSecretUnavailable", err)
		}
		close(sm.gate)
	})
}

func TestStoreTTL(t *testing.T) {
	sm := &fakeSM{values: []string{"v1", "v2", "v3"}}
	clk := newClock()
	s := NewStore(sm, 0, clk.Now) // 0 means the default, 5 minutes
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
		got, err := s.String(t.Context(), "id", st.fresh)
		if err != nil || got != st.want {
			t.Fatalf("step %d: got %q, %v; want %q", i, got, err, st.want)
		}
	}
}

func TestStoreClassifiesFailures(t *testing.T) {
	msg := "Secrets Manager can't find the specified secret."
	tests := []struct {
		name string
		sm   *fakeSM
		want error
	}{
		{"not found", &fakeSM{err: &types.ResourceNotFoundException{Message: &msg}}, ErrSecretNotFound},
		{"access denied", &fakeSM{err: errors.New("AccessDeniedException: not authorized")}, ErrSecretUnavailable},
		{"decryption", &fakeSM{err: &types.DecryptionFailure{Message: aws.String("kms")}}, ErrSecretUnavailable},
		{"binary secret", &fakeSM{binary: true}, ErrSecretMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewStore(tt.sm, 0, nil).String(t.Context(), "acronis-mfa/acronis", false)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			for _, other := range []error{ErrSecretNotFound, ErrSecretMalformed, ErrSecretUnavailable} {
				if other != tt.want && errors.Is(err, other) {
					t.Errorf("%v also matches %v", err, other)
				}
			}
			if !strings.Contains(err.Error(), "acronis-mfa/acronis") {
				t.Errorf("error %q does not name the secret", err)
			}
		})
	}
}

func TestAcronisSourceMalformedNamesSecretAndField(t *testing.T) {
	sm := &fakeSM{values: []string{`{"base_url":"http://example.com","client_id":"id","client_secret":"` + clientSecret + `"}`}}
	_, err := NewStore(sm, 0, nil).Acronis("acronis-mfa/acronis").Credentials(t.Context())
	if !errors.Is(err, ErrSecretMalformed) {
		t.Fatalf("got %v, want ErrSecretMalformed", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "acronis-mfa/acronis") || !strings.Contains(msg, "base_url") {
		t.Errorf("error %q does not name the secret and the field", msg)
	}
	if strings.Count(msg, ErrSecretMalformed.Error()) != 1 {
		t.Errorf("error %q repeats its class", msg)
	}
	if strings.Contains(msg, clientSecret) {
		t.Errorf("error leaks the client secret: %q", msg)
	}
}

func TestWebhookKeysFreshRereadsAtMostOnceAMinute(t *testing.T) {
	oldKey, newKey := []byte("old-key-of-24-bytes-long"), []byte("new-key-of-24-bytes-long")
	sm := &fakeSM{values: []string{keysJSON(whsec(oldKey))}}
	clk := newClock()
	s := NewStore(sm, 0, clk.Now)
	if _, err := s.WebhookKeys(t.Context(), "hooks"); err != nil {
		t.Fatal(err)
	}
	sm.set(keysJSON(whsec(oldKey), whsec(newKey)))
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

func TestWebhookKeysMalformed(t *testing.T) {
	key := whsec([]byte("fifteen bytes!!"))
	sm := &fakeSM{values: []string{keysJSON(key)}}
	_, err := NewStore(sm, 0, nil).WebhookKeys(t.Context(), "hooks")
	if !errors.Is(err, ErrSecretMalformed) || !strings.Contains(err.Error(), "signing_keys[0]") || !strings.Contains(err.Error(), "hooks") {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), strings.TrimPrefix(key, "whsec_")) {
		t.Fatalf("error leaks the key: %v", err)
	}
}
