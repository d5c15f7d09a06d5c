package acronis

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

const (
	tokenOp = "POST /idp/token"
	// tokenLifetime is what Acronis documents, assumed when an answer carries
	// neither expires_on nor expires_in; a token that dies earlier is caught by
	// the 401 path anyway.
	tokenLifetime = 2 * time.Hour
)

// CredentialSource gives the credentials; Refresh re-reads them after Acronis
// rejected them (secret rotated).
type CredentialSource interface {
	Credentials(ctx context.Context) (Credentials, error)
	Refresh(ctx context.Context) (Credentials, error)
}

// token is an access token with what it was issued for.
type token struct {
	bearer   string // the Authorization header value
	base     string // data center URL of the credentials it was issued to
	clientID string
	renewAt  time.Time
}

func (t *token) authorize(r *http.Request) { r.Header.Set("Authorization", t.bearer) }

// token returns a cached token, or has exactly one caller fetch a new one while
// the others wait for it.
func (c *Client) token(ctx context.Context) (*token, error) {
	if t := c.cachedToken(); t != nil {
		return t, nil
	}
	select {
	case c.renewing <- struct{}{}:
	case <-ctx.Done():
		return nil, request{op: tokenOp}.ended(ctx, nil)
	}
	defer func() { <-c.renewing }()
	// Whoever held the slot before may have just renewed it.
	if t := c.cachedToken(); t != nil {
		return t, nil
	}
	t, err := c.newToken(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.tok = t
	c.mu.Unlock()
	return t, nil
}

func (c *Client) cachedToken() *token {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok != nil && c.now().Before(c.tok.renewAt) {
		return c.tok
	}
	return nil
}

// invalidate drops t after Acronis refused it, unless another caller has
// already replaced it: dropping its successor would cost a needless renewal.
func (c *Client) invalidate(t *token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == t {
		c.tok = nil
	}
}

// newToken gets a token with the current credentials; if Acronis rejects them,
// it re-reads them once, since the secret may have been rotated.
func (c *Client) newToken(ctx context.Context) (*token, error) {
	creds, err := c.src.Credentials(ctx)
	if err != nil {
		return nil, credentialsError(ctx, err)
	}
	t, e := c.requestToken(ctx, creds)
	if e == nil {
		return t, nil
	}
	if !rejected(e) {
		return nil, e
	}
	c.log.DebugContext(ctx, "acronis credentials rejected, re-reading them",
		"client_id", creds.ClientID, "status", e.Status, "code", e.Code)
	if creds, err = c.src.Refresh(ctx); err != nil {
		return nil, credentialsError(ctx, err)
	}
	if t, e = c.requestToken(ctx, creds); e == nil {
		return t, nil
	}
	if rejected(e) {
		e.Class = ErrUnauthorized
	}
	return nil, e
}

// rejected reports whether the token endpoint refused the credentials
// themselves, as opposed to failing.
func rejected(e *Error) bool {
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return true
	case http.StatusBadRequest:
		return e.Code == "invalid_client" || e.Code == "unauthorized_client" || e.Code == "access_denied"
	}
	return false
}

func credentialsError(ctx context.Context, err error) *Error {
	if ctx.Err() != nil {
		return request{op: "credentials"}.ended(ctx, err)
	}
	return &Error{Op: "credentials", Class: ErrUpstream, Message: "the API client's credentials could not be read", Err: err}
}

func (c *Client) requestToken(ctx context.Context, creds Credentials) (*token, *Error) {
	switch {
	case creds.BaseURL == "":
		return nil, credentialsError(ctx, errors.New("no base URL"))
	case creds.ClientID == "":
		return nil, credentialsError(ctx, errors.New("no client id"))
	case creds.ClientSecret == "":
		return nil, credentialsError(ctx, errors.New("no client secret"))
	}
	r := request{
		op:          tokenOp,
		method:      http.MethodPost,
		path:        "/idp/token",
		body:        []byte("grant_type=client_credentials"),
		contentType: "application/x-www-form-urlencoded",
	}
	var answer tokenAnswer
	decode := func(body io.Reader) error {
		var a tokenAnswer
		if err := json.NewDecoder(body).Decode(&a); err != nil {
			return err
		}
		if a.AccessToken == "" {
			return errors.New("no access_token")
		}
		answer = a
		return nil
	}
	authorize := func(req *http.Request) { req.SetBasicAuth(creds.ClientID, creds.ClientSecret) }
	// Measured before sending, so that the time in flight shortens the token's
	// life rather than lengthening it.
	issued := c.now()
	if e := c.exchange(ctx, creds.BaseURL, r, authorize, decode); e != nil {
		return nil, e
	}
	expires := answer.expiry(issued)
	return &token{
		bearer:   "Bearer " + answer.AccessToken,
		base:     creds.BaseURL,
		clientID: creds.ClientID,
		renewAt:  expires.Add(-renewMargin(expires.Sub(issued))),
	}, nil
}

// renewMargin is how long before expiry a token of this lifetime is replaced:
// tokenRenewMargin, but never more than half the lifetime, so that a short-lived
// token is still reused rather than fetched anew for every request.
func renewMargin(lifetime time.Duration) time.Duration {
	return min(tokenRenewMargin, max(lifetime, 0)/2)
}

type tokenAnswer struct {
	AccessToken string  `json:"access_token"`
	ExpiresOn   float64 `json:"expires_on"` // Unix seconds
	ExpiresIn   float64 `json:"expires_in"` // seconds
}

// expiry takes the earlier of expires_on and expires_in: expires_in does not
// depend on the two clocks agreeing.
func (a tokenAnswer) expiry(issued time.Time) time.Time {
	var expires time.Time
	if a.ExpiresOn > 0 {
		expires = time.Unix(int64(a.ExpiresOn), 0)
	}
	if a.ExpiresIn > 0 {
		if in := issued.Add(time.Duration(a.ExpiresIn * float64(time.Second))); expires.IsZero() || in.Before(expires) {
			expires = in
		}
	}
	if expires.IsZero() {
		expires = issued.Add(tokenLifetime)
	}
	return expires
}
