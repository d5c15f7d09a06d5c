package secrets

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"acronismfa/internal/acronis"
)

// Error classes. Every error of this package matches exactly one with
// errors.Is. Callers answer all of them alike (502, batch failure), but logs and
// tests must tell an operator's typo from an outage.
var (
	// ErrSecretNotFound: Secrets Manager has no such secret (ResourceNotFoundException).
	ErrSecretNotFound = errors.New("secret not found")
	// ErrSecretMalformed: the secret exists but its value is not what
	// docs/reference.md (Secrets) describes.
	ErrSecretMalformed = errors.New("secret malformed")
	// ErrSecretUnavailable: any other failure to read it (access denied,
	// throttling, network, the context ending).
	ErrSecretUnavailable = errors.New("secret unavailable")
)

// Error is a failure to read one secret.
type Error struct {
	SecretID string // the id or ARN asked for; ids are not secret
	Class    error  // ErrSecretNotFound, ErrSecretMalformed or ErrSecretUnavailable
	Err      error  // the cause; never holds the secret's value
}

func (e *Error) Error() string {
	msg := "secret " + e.SecretID + ": "
	if !errors.Is(e.Err, e.Class) {
		msg += e.Class.Error() + ": "
	}
	return msg + e.Err.Error()
}

// Unwrap lets errors.Is match both the class and the cause (context.DeadlineExceeded, say).
func (e *Error) Unwrap() []error { return []error{e.Class, e.Err} }

// GetSecretValueAPI is the one Secrets Manager operation the store needs; the
// SDK client satisfies it.
type GetSecretValueAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

const (
	// DefaultTTL is how long a secret is served from memory: minutes, so a
	// rotation is picked up without a redeploy even when nothing forces a re-read.
	DefaultTTL = 5 * time.Minute
	// webhookKeysMinAge is how old cached signing keys must be before a failed
	// signature check may re-read them. Anyone can send a badly signed request,
	// so without this floor each one would cost a GetSecretValue.
	webhookKeysMinAge = time.Minute
)

// Store caches secret strings by id. Make one per process and share it: it is
// safe for concurrent use, and concurrent callers share one GetSecretValue.
type Store struct {
	client GetSecretValueAPI
	ttl    time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is one secret's cache. Reads of one secret are serialised, which is what
// makes a cold cache cost one GetSecretValue however many callers arrive.
type entry struct {
	// lock has capacity one and is held while checking or refilling the entry;
	// a channel rather than a mutex so that a waiter can give up when its
	// context ends.
	lock chan struct{}
	// started and finished number the fetches; a caller notes them on arrival
	// to recognise a fetch that is as fresh as one of its own.
	started, finished atomic.Uint64

	// Guarded by lock.
	value     string
	fetchedAt time.Time
	have      bool
	last      fetched
}

// fetched is the outcome of one GetSecretValue.
type fetched struct {
	seq   uint64
	value string
	err   error
}

// NewStore returns a store reading through client. A ttl <= 0 means DefaultTTL;
// now is the clock (nil means time.Now), injectable for tests.
func NewStore(client GetSecretValueAPI, ttl time.Duration, now func() time.Time) *Store {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Store{client: client, ttl: ttl, now: now, entries: make(map[string]*entry)}
}

// get returns a value read no more than maxAge ago; maxAge 0 asks for a read
// that starts after this call does.
func (s *Store) get(ctx context.Context, secretID string, maxAge time.Duration) (string, error) {
	e := s.entry(secretID)
	startedBefore, finishedBefore := e.started.Load(), e.finished.Load()
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return "", &Error{SecretID: secretID, Class: ErrSecretUnavailable, Err: ctx.Err()}
	}
	defer func() { <-e.lock }()

	// While this call waited, another may have read the secret. A fresh caller
	// takes that read only if it began after this call did; anyone else takes
	// it if it ended after this call began, failure included, so that an outage
	// costs one read per wave of callers, not one per caller.
	if maxAge == 0 && e.last.seq > startedBefore || maxAge > 0 && e.last.seq > finishedBefore {
		return e.last.value, e.last.err
	}
	if e.have && s.now().Sub(e.fetchedAt) < maxAge {
		return e.value, nil
	}

	seq := e.started.Add(1)
	v, err := s.fetch(ctx, secretID)
	if err != nil && ctx.Err() != nil {
		// This caller's own deadline says nothing about the secret: leave no
		// failure for the others to share.
		return v, err
	}
	e.last = fetched{seq: seq, value: v, err: err}
	e.finished.Store(seq)
	if err == nil {
		e.value, e.fetchedAt, e.have = v, s.now(), true
	}
	return v, err
}

func (s *Store) entry(secretID string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[secretID]
	if !ok {
		e = &entry{lock: make(chan struct{}, 1)}
		s.entries[secretID] = e
	}
	return e
}

func (s *Store) fetch(ctx context.Context, secretID string) (string, error) {
	out, err := s.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		var notFound *types.ResourceNotFoundException
		if errors.As(err, &notFound) {
			return "", &Error{SecretID: secretID, Class: ErrSecretNotFound, Err: err}
		}
		return "", &Error{SecretID: secretID, Class: ErrSecretUnavailable, Err: err}
	}
	if out.SecretString == nil {
		return "", &Error{SecretID: secretID, Class: ErrSecretMalformed, Err: errors.New("no SecretString: binary secrets are not supported")}
	}
	return *out.SecretString, nil
}

// AcronisSource is the Acronis credentials secret as an acronis.CredentialSource.
type AcronisSource struct {
	store    *Store
	secretID string
}

var _ acronis.CredentialSource = (*AcronisSource)(nil)

// Acronis returns the credentials source of secretID.
func (s *Store) Acronis(secretID string) *AcronisSource {
	return &AcronisSource{store: s, secretID: secretID}
}

// Credentials returns the cached credentials.
func (a *AcronisSource) Credentials(ctx context.Context) (acronis.Credentials, error) {
	return a.load(ctx, a.store.ttl)
}

// Refresh re-reads the secret and returns what it holds now. The acronis client
// calls it once when Acronis rejects the credentials, so a rotated secret is
// picked up without waiting for the TTL.
func (a *AcronisSource) Refresh(ctx context.Context) (acronis.Credentials, error) {
	return a.load(ctx, 0)
}

func (a *AcronisSource) load(ctx context.Context, maxAge time.Duration) (acronis.Credentials, error) {
	raw, err := a.store.get(ctx, a.secretID, maxAge)
	if err != nil {
		return acronis.Credentials{}, err
	}
	c, err := ParseAcronis(raw)
	if err != nil {
		return acronis.Credentials{}, &Error{SecretID: a.secretID, Class: ErrSecretMalformed, Err: err}
	}
	return c, nil
}

// WebhookKeys returns the signing keys in secretID, from the cache when it is
// younger than the TTL.
func (s *Store) WebhookKeys(ctx context.Context, secretID string) ([][]byte, error) {
	return s.webhookKeys(ctx, secretID, s.ttl)
}

// WebhookKeysFresh returns signing keys read within the last minute, re-reading
// the secret if the cached ones are older. Call it when no cached key matched a
// signature: the sender may use a key added since. The one-minute floor bounds
// what a flood of badly signed requests can cost to one read a minute; the price
// is that a key added within a minute of the last read is refused until that
// minute has passed (Standard Webhooks senders retry).
func (s *Store) WebhookKeysFresh(ctx context.Context, secretID string) ([][]byte, error) {
	return s.webhookKeys(ctx, secretID, min(s.ttl, webhookKeysMinAge))
}

func (s *Store) webhookKeys(ctx context.Context, secretID string, maxAge time.Duration) ([][]byte, error) {
	raw, err := s.get(ctx, secretID, maxAge)
	if err != nil {
		return nil, err
	}
	keys, err := ParseWebhookKeys(raw)
	if err != nil {
		return nil, &Error{SecretID: secretID, Class: ErrSecretMalformed, Err: err}
	}
	return keys, nil
}

// Static is a credentials source that never changes: the command line's
// ACRONIS_BASE_URL, ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET. Refresh has
// nothing to re-read.
type Static acronis.Credentials

var _ acronis.CredentialSource = Static{}

// Credentials returns the credentials.
func (s Static) Credentials(context.Context) (acronis.Credentials, error) {
	return acronis.Credentials(s), nil
}

// Refresh returns the same credentials.
func (s Static) Refresh(context.Context) (acronis.Credentials, error) {
	return acronis.Credentials(s), nil
}

// String redacts the client secret, as acronis.Credentials does.
func (s Static) String() string { return acronis.Credentials(s).String() }

// GoString redacts the client secret under %#v too.
func (s Static) GoString() string { return s.String() }

// LogValue redacts the client secret in structured logs.
func (s Static) LogValue() slog.Value { return acronis.Credentials(s).LogValue() }
