package flywheel

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Scope is what an API token may do.
type Scope string

// Scopes of API tokens.
const (
	// ScopeRead reads runs, evaluation items and the dashboard.
	ScopeRead Scope = "read"
	// ScopeWrite is read plus creating and cancelling runs and POST /api/logs.
	ScopeWrite Scope = "write"
	// ScopeAdmin may do everything: delete runs, River's UI.
	ScopeAdmin Scope = "admin"
	// ScopeIngest may only send records: POST /api/logs and the capture
	// proxy (/v1/*). It is the token of a production application.
	ScopeIngest Scope = "ingest"
)

// Scopes returns every scope, in the order the CLI lists them.
func Scopes() []Scope { return []Scope{ScopeRead, ScopeWrite, ScopeAdmin, ScopeIngest} }

// ParseScope returns the scope named s.
func ParseScope(s string) (Scope, error) {
	for _, sc := range Scopes() {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", Errorf(EINVALID, "unknown scope %q (want read, write, admin or ingest)", s)
}

// Error codes of refused requests.
const (
	EUNAUTHORIZED = "unauthorized" // no credentials, or credentials that are not valid (401)
	EFORBIDDEN    = "forbidden"    // valid credentials without the scope the request needs (403)
)

// TokenPrefix starts every API token secret, so that a leaked one is easy to
// recognise (and to find with secret scanners).
const TokenPrefix = "fw_"

// Token is an API token. Its secret is shown once, when it is created; only
// its SHA-256 hash is stored.
type Token struct {
	// ID is the public part of the token, shown by "tokens list" and used
	// by "tokens revoke".
	ID    string `json:"id"`
	Name  string `json:"name"`
	Scope Scope  `json:"scope"`
	// Hash is the hex SHA-256 of the secret.
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// Source says who manages the token: TokenSourceCLI (created with
	// "flywheel tokens create") or TokenSourceFile (server.auth.tokens_file).
	Source TokenSource `json:"source"`
}

// TokenSource says who manages a token.
type TokenSource string

// Sources of tokens.
const (
	// TokenSourceCLI is a token created with "flywheel tokens create".
	TokenSourceCLI TokenSource = "cli"
	// TokenSourceFile is a token listed in server.auth.tokens_file (a
	// mounted Secret): the file adds, changes and revokes it.
	TokenSourceFile TokenSource = "file"
)

// Managed reports whether the tokens file manages t (it cannot be revoked
// by hand: remove it from the file instead).
func (t *Token) Managed() bool { return t.Source == TokenSourceFile }

// Usable returns nil when t may authenticate a request at now, or an
// EUNAUTHORIZED error saying why not.
func (t *Token) Usable(now time.Time) error {
	switch {
	case t.RevokedAt != nil:
		return Errorf(EUNAUTHORIZED, "The token %s was revoked.", t.ID)
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return Errorf(EUNAUTHORIZED, "The token %s expired at %s.", t.ID, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// SessionCookie is the name of the dashboard's session cookie.
const SessionCookie = "flywheel_session"

// Session is a dashboard login: a random secret held in a browser cookie
// and stored hashed, tied to the token the user logged in with.
type Session struct {
	// Hash is the hex SHA-256 of the cookie's secret.
	Hash      string
	TokenID   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Principal is who a request acts as.
type Principal struct {
	TokenID string
	Name    string
	Scope   Scope
	// Session is true when the request was authenticated by a dashboard
	// session cookie rather than a bearer token.
	Session bool
}

// TokenStore keeps API tokens and dashboard sessions.
type TokenStore interface {
	// CreateToken stores t (its ID and Hash set).
	CreateToken(ctx context.Context, t *Token) error
	// GetToken returns the token with the id, or ErrNotFound.
	GetToken(ctx context.Context, id string) (*Token, error)
	// GetFileTokenByHash returns the token of the tokens file whose secret
	// has the hash, or ErrNotFound.
	GetFileTokenByHash(ctx context.Context, hash string) (*Token, error)
	// ListTokens returns every token, oldest first.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks a token revoked at the time given (ErrNotFound when
	// it does not exist; revoking twice keeps the first time).
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// TouchToken records that the token was used at the time given.
	TouchToken(ctx context.Context, id string, at time.Time) error
	// CreateSession stores a dashboard session.
	CreateSession(ctx context.Context, s *Session) error
	// GetSession returns the session whose secret has the hash, or ErrNotFound.
	GetSession(ctx context.Context, hash string) (*Session, error)
	// DeleteSession removes a session (no error when there is none).
	DeleteSession(ctx context.Context, hash string) error
	// DeleteExpiredSessions removes sessions that expired before the time given.
	DeleteExpiredSessions(ctx context.Context, before time.Time) (int64, error)
}

// Authenticator checks credentials. The server's middleware and the
// dashboard's login page share one.
type Authenticator interface {
	// Enabled reports whether requests need credentials at all.
	Enabled() bool
	// AuthenticateToken resolves an API token secret (the bearer token).
	AuthenticateToken(ctx context.Context, secret string) (*Principal, error)
	// StartSession checks a token secret and opens a dashboard session for
	// it; it returns the cookie's secret and the session's expiry.
	StartSession(ctx context.Context, tokenSecret string) (cookie string, expires time.Time, err error)
	// AuthenticateSession resolves a session cookie's secret.
	AuthenticateSession(ctx context.Context, cookie string) (*Principal, error)
	// EndSession removes the session of a cookie's secret.
	EndSession(ctx context.Context, cookie string) error
}

// NewTokenID returns a new random token id (16 hex digits).
func NewTokenID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NewTokenSecret returns a new secret for the token with the id:
// "fw_<id>_<43 random base64url characters>" (256 random bits).
func NewTokenSecret(id string) string {
	return TokenPrefix + id + "_" + RandomSecret()
}

// RandomSecret returns 256 random bits, base64url-encoded without padding.
func RandomSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashSecret returns the hex SHA-256 of a secret: what is stored.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ParseTokenSecret returns the id part of a token secret, or ok false when
// secret does not have the shape NewTokenSecret gives.
func ParseTokenSecret(secret string) (id string, ok bool) {
	rest, found := strings.CutPrefix(secret, TokenPrefix)
	if !found {
		return "", false
	}
	id, random, found := strings.Cut(rest, "_")
	if !found || len(id) != 16 || random == "" || len(secret) > 200 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return id, true
}

// SecretMatches compares a secret with a stored hash in constant time.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// BadCredentials returns the error of a token or session that is unknown or
// does not match; it says nothing about which part was wrong.
func BadCredentials() *Error {
	return &Error{Code: EUNAUTHORIZED, Message: "Invalid credentials: the token or session is unknown."}
}

// IsAuthError reports whether err refuses credentials (EUNAUTHORIZED).
func IsAuthError(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == EUNAUTHORIZED
}

// principalKey is the context key of the request's Principal.
type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal of ctx, or nil when the request was
// not authenticated (authentication is off, or the route is open).
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// String returns "name (id, scope)".
func (p *Principal) String() string {
	return fmt.Sprintf("%s (%s, %s)", p.Name, p.TokenID, p.Scope)
}
