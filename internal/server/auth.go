package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// Defaults of authentication.
const (
	// SessionTTLDefault is how long a dashboard login lasts.
	SessionTTLDefault = 12 * time.Hour
	// TouchIntervalDefault is how stale a token's last-used time may get
	// before a request writes it again (one write per token per interval,
	// not one per request).
	TouchIntervalDefault = time.Minute
	// LoginPath is the dashboard's login page.
	LoginPath = "/ui/login"
)

// AuthOptions configures an Auth.
type AuthOptions struct {
	// Store keeps tokens and sessions.
	Store flywheel.TokenStore
	// Enabled turns authentication on; off, every request passes.
	Enabled bool
	// SessionTTL bounds a dashboard login (0: SessionTTLDefault).
	SessionTTL time.Duration
	// TouchInterval: see TouchIntervalDefault (0: the default).
	TouchInterval time.Duration
	// Now is the clock (nil: time.Now).
	Now flywheel.Clock
	// Logger receives failures to record a token's use (nil: discarded).
	Logger *slog.Logger
}

// Auth checks API tokens and dashboard sessions against a TokenStore. It
// implements flywheel.Authenticator; the server's middleware and the
// dashboard's login page share one.
type Auth struct {
	opts   AuthOptions
	logger *slog.Logger
}

var _ flywheel.Authenticator = (*Auth)(nil)

// NewAuth returns an Auth. Store may be nil only when Enabled is false.
func NewAuth(opts AuthOptions) *Auth {
	opts.SessionTTL = cmp.Or(opts.SessionTTL, SessionTTLDefault)
	opts.TouchInterval = cmp.Or(opts.TouchInterval, TouchIntervalDefault)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Auth{opts: opts, logger: logger}
}

// Enabled reports whether requests need credentials.
func (a *Auth) Enabled() bool { return a != nil && a.opts.Enabled }

// token resolves a token secret to its stored, usable token.
func (a *Auth) token(ctx context.Context, secret string) (*flywheel.Token, error) {
	var (
		t   *flywheel.Token
		err error
	)
	if id, ok := flywheel.ParseTokenSecret(secret); ok {
		t, err = a.opts.Store.GetToken(ctx, id)
	} else if len(secret) >= flywheel.FileSecretMinLen && len(secret) <= flywheel.FileSecretMaxLen {
		// A tokens file's secret has no id: it is found by its hash,
		// which the caller cannot steer, so timing reveals nothing.
		t, err = a.opts.Store.GetFileTokenByHash(ctx, flywheel.HashSecret(secret))
	} else {
		return nil, flywheel.BadCredentials()
	}
	switch {
	case errors.Is(err, flywheel.ErrNotFound):
		return nil, flywheel.BadCredentials()
	case err != nil:
		return nil, fmt.Errorf("look up token: %w", err)
	}
	if !flywheel.SecretMatches(secret, t.Hash) {
		return nil, flywheel.BadCredentials()
	}
	now := a.opts.Now()
	if err := t.Usable(now); err != nil {
		return nil, err
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= a.opts.TouchInterval {
		if err := a.opts.Store.TouchToken(ctx, t.ID, now); err != nil {
			a.logger.WarnContext(ctx, "Could not record a token's use", slog.String("token_id", t.ID), slog.Any("error", err))
		}
	}
	return t, nil
}

// AuthenticateToken resolves an API token secret.
func (a *Auth) AuthenticateToken(ctx context.Context, secret string) (*flywheel.Principal, error) {
	t, err := a.token(ctx, secret)
	if err != nil {
		return nil, err
	}
	return &flywheel.Principal{TokenID: t.ID, Name: t.Name, Scope: t.Scope}, nil
}

// StartSession opens a dashboard session for a valid token secret. The
// session ends after SessionTTL, or when the token expires if sooner.
func (a *Auth) StartSession(ctx context.Context, tokenSecret string) (string, time.Time, error) {
	t, err := a.token(ctx, tokenSecret)
	if err != nil {
		return "", time.Time{}, err
	}
	now := a.opts.Now()
	expires := now.Add(a.opts.SessionTTL)
	if t.ExpiresAt != nil && t.ExpiresAt.Before(expires) {
		expires = *t.ExpiresAt
	}
	cookie := flywheel.RandomSecret()
	if err := a.opts.Store.CreateSession(ctx, &flywheel.Session{Hash: flywheel.HashSecret(cookie), TokenID: t.ID,
		CreatedAt: now, ExpiresAt: expires}); err != nil {
		return "", time.Time{}, err
	}
	// Logins are rare: a good moment to forget sessions nobody ended.
	if _, err := a.opts.Store.DeleteExpiredSessions(ctx, now); err != nil {
		a.logger.WarnContext(ctx, "Could not remove expired sessions", slog.Any("error", err))
	}
	return cookie, expires, nil
}

// AuthenticateSession resolves a session cookie's secret. A session is
// valid while it has not expired and its token is still usable.
func (a *Auth) AuthenticateSession(ctx context.Context, cookie string) (*flywheel.Principal, error) {
	if cookie == "" || len(cookie) > 100 {
		return nil, flywheel.BadCredentials()
	}
	s, err := a.opts.Store.GetSession(ctx, flywheel.HashSecret(cookie))
	switch {
	case errors.Is(err, flywheel.ErrNotFound):
		return nil, flywheel.Errorf(flywheel.EUNAUTHORIZED, "Your session has ended; log in again.")
	case err != nil:
		return nil, fmt.Errorf("look up session: %w", err)
	}
	now := a.opts.Now()
	if !now.Before(s.ExpiresAt) {
		_ = a.opts.Store.DeleteSession(ctx, s.Hash)
		return nil, flywheel.Errorf(flywheel.EUNAUTHORIZED, "Your session expired; log in again.")
	}
	t, err := a.opts.Store.GetToken(ctx, s.TokenID)
	if err != nil {
		return nil, fmt.Errorf("look up token %s of a session: %w", s.TokenID, err)
	}
	if err := t.Usable(now); err != nil {
		return nil, err
	}
	return &flywheel.Principal{TokenID: t.ID, Name: t.Name, Scope: t.Scope, Session: true}, nil
}

// EndSession removes the session of a cookie's secret.
func (a *Auth) EndSession(ctx context.Context, cookie string) error {
	if cookie == "" {
		return nil
	}
	return a.opts.Store.DeleteSession(ctx, flywheel.HashSecret(cookie))
}

// ---------------------------------------------------------------- access rules

// access is what a route requires.
type access struct {
	open bool
	// scopes may use the route; admin may use every route.
	scopes []flywheel.Scope
}

func (ac access) allows(s flywheel.Scope) bool {
	return ac.open || s == flywheel.ScopeAdmin || slices.Contains(ac.scopes, s)
}

// needs names the scopes of a refusal message.
func (ac access) needs() string {
	names := make([]string, 0, len(ac.scopes))
	for _, s := range ac.scopes {
		names = append(names, string(s))
	}
	return strings.Join(names, " or ")
}

// Accesses of the routes: who may use them.
func accessOpen() access   { return access{open: true} }
func accessRead() access   { return accessOf(flywheel.ScopeRead, flywheel.ScopeWrite) }
func accessWrite() access  { return accessOf(flywheel.ScopeWrite) }
func accessAdmin() access  { return accessOf(flywheel.ScopeAdmin) }
func accessIngest() access { return accessOf(flywheel.ScopeIngest) }
func accessLogs() access   { return accessOf(flywheel.ScopeWrite, flywheel.ScopeIngest) }

// accessOf is the access of the scopes and admin.
func accessOf(scopes ...flywheel.Scope) access {
	if !slices.Contains(scopes, flywheel.ScopeAdmin) {
		scopes = append(scopes, flywheel.ScopeAdmin)
	}
	return access{scopes: scopes}
}

// accessRule is one line of the table of what each route needs.
type accessRule struct {
	pattern string // a ServeMux pattern
	access  access
}

// accessRules is the table of what every route needs when authentication
// is on. A request that matches no rule needs admin when the server would
// serve it, and any valid token when the server would answer 404 or 405.
func (s *Server) accessRules() []accessRule {
	metrics := accessRead()
	if s.opts.MetricsPublic {
		metrics = accessOpen()
	}
	rules := []accessRule{
		{"GET /healthz", accessOpen()},
		{"GET /readyz", accessOpen()},
		{"GET /openapi.json", accessOpen()},
		{"GET /openapi.yaml", accessOpen()},
		{"GET /metrics", metrics},
		// Redirects to the mounts' own paths.
		{"GET /{$}", accessOpen()},
		{"GET /ui", accessOpen()},
		{"GET /ui/river", accessOpen()},
		{"/v1", accessOpen()},

		{"GET /api/jobs", accessRead()},
		{"GET /api/jobs/{job_id}", accessRead()},
		{"GET /api/jobs/{job_id}/manifest", accessRead()},
		{"GET /api/evaluations/{evaluation_id}/items", accessRead()},
		{"GET /api/jobs/compare", accessRead()},
		{"GET /api/workloads", accessRead()},
		{"GET /api/workloads/{workload_id}/history", accessRead()},
		{"GET /api/workloads/{workload_id}/online", accessRead()},
		{"POST /api/jobs", accessWrite()},
		{"POST /api/jobs/{job_id}/cancel", accessWrite()},
		{"POST /api/jobs/{job_id}/promote", accessAdmin()},
		{"GET /api/promotions", accessRead()},
		{"GET /api/promotions/{promotion_id}", accessRead()},
		{"POST /api/promotions/{promotion_id}/rollback", accessAdmin()},
		{"DELETE /api/jobs/{job_id}", accessAdmin()},
		{"POST /api/logs", accessLogs()},
		{"DELETE /api/logs", accessAdmin()},
		{"GET /api/audit", accessAdmin()},
		{"GET /api/schedules", accessRead()},
		{"GET /api/schedules/{schedule_id}", accessRead()},
		{"POST /api/schedules", accessWrite()},
		{"DELETE /api/schedules/{schedule_id}", accessWrite()},
		{"/v1/", accessIngest()}, // the capture proxy

		{"GET /ui/", accessRead()},
		{"GET /ui/audit", accessAdmin()},
		{"GET /ui/static/", accessOpen()},
		{"GET " + LoginPath, accessOpen()},
		{"POST " + LoginPath, accessOpen()},
		{"POST /ui/logout", accessOpen()},
		{"POST /ui/runs/{id}/cancel", accessWrite()},
		{"POST /ui/runs/{id}/delete", accessAdmin()},
		{"POST /ui/runs/{id}/promote", accessAdmin()},
		{"POST /ui/promotions/{id}/rollback", accessAdmin()},
	}
	// River's UI: queues, jobs, retries, cancels and deletes: admin only.
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		rules = append(rules, accessRule{m + " /ui/river/", accessAdmin()})
	}
	return rules
}

// accessHandler carries a rule through the matching mux.
type accessHandler struct{ access access }

func (accessHandler) ServeHTTP(http.ResponseWriter, *http.Request) {}

// newAccessMux returns a mux used only to match a request to its rule.
func (s *Server) newAccessMux() *http.ServeMux {
	m := http.NewServeMux()
	for _, rule := range s.accessRules() {
		m.Handle(rule.pattern, accessHandler{rule.access})
	}
	return m
}

// accessFor returns what r needs.
func (s *Server) accessFor(r *http.Request) access {
	if h, _ := s.access.Handler(r); h != nil {
		if ah, ok := h.(accessHandler); ok {
			return ah.access
		}
	}
	if _, pattern := s.mux.Handler(r); pattern == "" || pattern == "/" {
		// Nothing would be served: any valid token sees the 404 or 405.
		return access{scopes: flywheel.Scopes()}
	}
	return accessAdmin()
}

// authenticate is the middleware that enforces the access table: a bearer
// token on every route that needs one, or, on the dashboard and River's
// UI only, a session cookie. A request without valid credentials gets
// 401 (a browser asking for a dashboard page is sent to the login page);
// one whose token lacks the scope gets 403.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.opts.Auth == nil || !s.opts.Auth.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ac := s.accessFor(r)
		if ac.open {
			next.ServeHTTP(w, r)
			return
		}
		p, bearer, err := s.credentials(r)
		if err != nil {
			s.refuse(w, r, err)
			return
		}
		if !ac.allows(p.Scope) {
			s.logger.InfoContext(r.Context(), "Request refused: scope", slog.String("token_id", p.TokenID),
				slog.String("scope", string(p.Scope)), slog.String("method", r.Method), slog.String("path", r.URL.Path))
			writeDetail(w, http.StatusForbidden, fmt.Sprintf("The token %q has scope %s; %s %s needs scope %s.",
				p.Name, p.Scope, r.Method, r.URL.Path, ac.needs()))
			return
		}
		r = r.WithContext(flywheel.WithPrincipal(r.Context(), p))
		if bearer {
			// Our token stops here: never forwarded (the capture proxy
			// passes the caller's headers upstream).
			r.Header = r.Header.Clone()
			r.Header.Del("Authorization")
		}
		next.ServeHTTP(w, r)
	})
}

// credentials returns who r acts as: its bearer token, else (dashboard
// and River UI paths only) its session cookie.
func (s *Server) credentials(r *http.Request) (p *flywheel.Principal, bearer bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, secret, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
			return nil, false, flywheel.Errorf(flywheel.EUNAUTHORIZED, "The Authorization header must be \"Bearer <token>\".")
		}
		p, err := s.opts.Auth.AuthenticateToken(r.Context(), strings.TrimSpace(secret))
		return p, true, err
	}
	if isUIPath(r.URL.Path) {
		if c, err := r.Cookie(flywheel.SessionCookie); err == nil && c.Value != "" {
			p, err := s.opts.Auth.AuthenticateSession(r.Context(), c.Value)
			return p, false, err
		}
	}
	return nil, false, flywheel.Errorf(flywheel.EUNAUTHORIZED, "Not authenticated: send \"Authorization: Bearer <token>\" (create one with 'flywheel tokens create').")
}

func isUIPath(path string) bool { return path == "/ui" || strings.HasPrefix(path, "/ui/") }

// refuse answers a request whose credentials failed: 401, or the login
// page for a browser asking for a dashboard page, or 503 when they could
// not be checked.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if !flywheel.IsAuthError(err) {
		s.logger.ErrorContext(r.Context(), "Could not check credentials", slog.String("path", r.URL.Path), slog.Any("error", err))
		writeDetail(w, http.StatusServiceUnavailable, "Credentials could not be checked (the database did not answer); try again.")
		return
	}
	if _, err := r.Cookie(flywheel.SessionCookie); err == nil {
		http.SetCookie(w, &http.Cookie{Name: flywheel.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
			Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	}
	if isUIPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, LoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	challenge := `Bearer realm="flywheel"`
	if r.Header.Get("Authorization") != "" {
		challenge += `, error="invalid_token"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeDetail(w, http.StatusUnauthorized, flywheel.ErrorMessage(err))
}
