package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
)

// authBundle is a server with authentication on, a real (SQLite) token
// store, one token per scope, and mounts that record what reaches them.
type authBundle struct {
	*testBundle
	store   *store.Store
	auth    *server.Auth
	h       http.Handler
	secrets map[string]string // by name: read, write, admin, ingest, revoked, expired
	now     time.Time

	mu      sync.Mutex
	reached []*http.Request // requests the mounts saw
}

func (b *authBundle) mount(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.reached = append(b.reached, r)
		b.mu.Unlock()
		_, _ = w.Write([]byte(name))
	})
}

func (b *authBundle) last() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reached[len(b.reached)-1]
}

func authSetup(t *testing.T, enabled bool, mutate ...func(*server.Options)) *authBundle {
	t.Helper()
	b := &authBundle{testBundle: setup(t), store: storetest.Open(t, store.SQLite), secrets: map[string]string{},
		now: time.Now().UTC()}
	ctx := context.Background()
	add := func(name string, scope flywheel.Scope, mod func(*flywheel.Token)) {
		tok := &flywheel.Token{ID: flywheel.NewTokenID(), Name: name, Scope: scope, CreatedAt: b.now.Add(-time.Hour)}
		secret := flywheel.NewTokenSecret(tok.ID)
		tok.Hash = flywheel.HashSecret(secret)
		if mod != nil {
			mod(tok)
		}
		require.NoError(t, b.store.CreateToken(ctx, tok))
		b.secrets[name] = secret
	}
	for _, sc := range flywheel.Scopes() {
		add(string(sc), sc, nil)
	}
	add("revoked", flywheel.ScopeAdmin, func(tok *flywheel.Token) { at := b.now.Add(-time.Minute); tok.RevokedAt = &at })
	add("expired", flywheel.ScopeAdmin, func(tok *flywheel.Token) { at := b.now.Add(-time.Second); tok.ExpiresAt = &at })

	b.auth = server.NewAuth(server.AuthOptions{Store: b.store, Enabled: enabled})
	b.opts.Auth = b.auth
	b.opts.RiverUI = b.mount("river")
	b.opts.Capture = b.mount("capture")
	b.opts.UI = b.mount("ui")
	for _, m := range mutate {
		m(&b.opts)
	}
	b.h = b.server()
	return b
}

func bearer(secret string) []string { return []string{"Authorization", "Bearer " + secret} }

// scopeCase is one request and the token scopes allowed to make it.
type scopeCase struct {
	method, path, body string
	allowed            []flywheel.Scope
}

func scopeCases() []scopeCase {
	const (
		r = flywheel.ScopeRead
		w = flywheel.ScopeWrite
		a = flywheel.ScopeAdmin
		i = flywheel.ScopeIngest
	)
	return []scopeCase{
		{"GET", "/api/jobs", "", []flywheel.Scope{r, w, a}},
		{"GET", "/api/jobs/run-1", "", []flywheel.Scope{r, w, a}},
		{"GET", "/api/evaluations/ev-1/items", "", []flywheel.Scope{r, w, a}},
		{"GET", "/metrics", "", []flywheel.Scope{r, w, a}},
		{"POST", "/api/jobs", `{"workload_id":"w","client_id":"c"}`, []flywheel.Scope{w, a}},
		{"POST", "/api/jobs/run-1/cancel", "", []flywheel.Scope{w, a}},
		{"DELETE", "/api/jobs/run-1", "", []flywheel.Scope{a}},
		{"POST", "/api/logs", `{"workload_id":"w","client_id":"c","request":{},"response":{}}`, []flywheel.Scope{w, i, a}},
		{"POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, []flywheel.Scope{i, a}},
		{"GET", "/v1/models", "", []flywheel.Scope{i, a}},
		{"GET", "/ui/", "", []flywheel.Scope{r, w, a}},
		{"GET", "/ui/runs/run-1", "", []flywheel.Scope{r, w, a}},
		{"POST", "/ui/runs/run-1/cancel", `{}`, []flywheel.Scope{w, a}},
		{"POST", "/ui/runs/run-1/delete", `{}`, []flywheel.Scope{a}},
		{"GET", "/ui/river/", "", []flywheel.Scope{a}},
		{"GET", "/ui/river/api/jobs?state=running", "", []flywheel.Scope{a}},
		{"POST", "/ui/river/api/jobs/cancel", `{"ids":["1"]}`, []flywheel.Scope{a}},
		{"POST", "/ui/somewhere-new", `{}`, []flywheel.Scope{a}}, // served by the dashboard, in no rule: admin
	}
}

func TestAuthScopes(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	for _, sc := range flywheel.Scopes() {
		for _, tc := range scopeCases() {
			t.Run(string(sc)+" "+tc.method+" "+tc.path, func(t *testing.T) {
				res := do(t, b.h, tc.method, tc.path, tc.body, bearer(b.secrets[string(sc)])...)
				allowed := false
				for _, a := range tc.allowed {
					allowed = allowed || a == sc
				}
				if allowed {
					require.NotContains(t, []int{401, 403}, res.status, "body: %s", res.body)
					return
				}
				require.Equal(t, http.StatusForbidden, res.status, "body: %s", res.body)
				require.Contains(t, res.detail(t), "needs scope")
			})
		}
	}
}

func TestAuthRefusesWithout(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	for _, tc := range scopeCases() {
		for name, header := range map[string][]string{
			"NoToken":       nil,
			"Revoked":       bearer(b.secrets["revoked"]),
			"Expired":       bearer(b.secrets["expired"]),
			"Malformed":     bearer("not-a-token"),
			"WrongSecret":   bearer(b.secrets["admin"][:len(b.secrets["admin"])-2] + "xx"),
			"UnknownID":     bearer(flywheel.NewTokenSecret(flywheel.NewTokenID())),
			"NotBearer":     {"Authorization", "Basic " + b.secrets["admin"]},
			"SessionOnAPI":  {"Cookie", flywheel.SessionCookie + "=whatever"},
			"EmptyBearer":   {"Authorization", "Bearer "},
			"LowercaseName": {"Authorization", "bearer nope"},
		} {
			t.Run(name+" "+tc.method+" "+tc.path, func(t *testing.T) {
				res := do(t, b.h, tc.method, tc.path, tc.body, header...)
				require.Equal(t, http.StatusUnauthorized, res.status, "body: %s", res.body)
				require.True(t, strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer"), res.header)
				require.NotEmpty(t, res.detail(t))
			})
		}
	}
	t.Run("ReasonNamed", func(t *testing.T) {
		res := do(t, b.h, "GET", "/api/jobs", "", bearer(b.secrets["revoked"])...)
		require.Contains(t, res.detail(t), "revoked")
		res = do(t, b.h, "GET", "/api/jobs", "", bearer(b.secrets["expired"])...)
		require.Contains(t, res.detail(t), "expired")
		require.Contains(t, res.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})
	t.Run("UnknownRouteStill401", func(t *testing.T) {
		res := do(t, b.h, "GET", "/api/nothing", "")
		require.Equal(t, http.StatusUnauthorized, res.status)
		res = do(t, b.h, "GET", "/api/nothing", "", bearer(b.secrets["ingest"])...)
		require.Equal(t, http.StatusNotFound, res.status)
	})
}

func TestAuthOpenRoutes(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	for _, path := range []string{"/healthz", "/readyz", "/openapi.json", "/ui/login", "/ui/static/style.css"} {
		res := do(t, b.h, "GET", path, "")
		require.NotEqual(t, http.StatusUnauthorized, res.status, path)
		require.NotEqual(t, http.StatusForbidden, res.status, path)
	}
	// The mounts' redirects to their own paths are open; where they lead is not.
	for path, to := range map[string]string{"/ui": "/ui/", "/ui/river": "/ui/river/", "/": "/ui/"} {
		res := do(t, b.h, "GET", path, "")
		require.Contains(t, []int{http.StatusMovedPermanently, http.StatusFound}, res.status, path)
		require.Equal(t, to, res.header.Get("Location"), path)
	}
	res := do(t, b.h, "GET", "/metrics", "")
	require.Equal(t, http.StatusUnauthorized, res.status)

	public := authSetup(t, true, func(o *server.Options) { o.MetricsPublic = true })
	res = do(t, public.h, "GET", "/metrics", "")
	require.Equal(t, http.StatusOK, res.status)
}

func TestAuthBrowserGoesToLogin(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	res := do(t, b.h, "GET", "/ui/runs/run-1?tab=x", "", "Accept", "text/html,application/xhtml+xml")
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/login?next="+url.QueryEscape("/ui/runs/run-1?tab=x"), res.header.Get("Location"))

	res = do(t, b.h, "GET", "/ui/river/", "", "Accept", "text/html")
	require.Equal(t, http.StatusSeeOther, res.status)

	// River UI's own API calls and API clients get 401, never a redirect.
	res = do(t, b.h, "GET", "/ui/river/api/jobs", "", "Accept", "application/json")
	require.Equal(t, http.StatusUnauthorized, res.status)
	res = do(t, b.h, "GET", "/api/jobs", "", "Accept", "text/html")
	require.Equal(t, http.StatusUnauthorized, res.status)
}

func TestAuthSessions(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	ctx := context.Background()
	cookie, expires, err := b.auth.StartSession(ctx, b.secrets["read"])
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(server.SessionTTLDefault), expires, time.Minute)
	c := []string{"Cookie", flywheel.SessionCookie + "=" + cookie}

	res := do(t, b.h, "GET", "/ui/", "", c...)
	require.Equal(t, http.StatusOK, res.status)
	p := flywheel.PrincipalFrom(b.last().Context())
	require.NotNil(t, p)
	require.True(t, p.Session)
	require.Equal(t, "read", p.Name)

	// The session keeps its token's scope.
	res = do(t, b.h, "POST", "/ui/runs/run-1/cancel", `{}`, c...)
	require.Equal(t, http.StatusForbidden, res.status)
	// A cookie never authenticates the API.
	res = do(t, b.h, "GET", "/api/jobs", "", c...)
	require.Equal(t, http.StatusUnauthorized, res.status)

	_, _, err = b.auth.StartSession(ctx, b.secrets["revoked"])
	require.True(t, flywheel.IsAuthError(err))
	_, _, err = b.auth.StartSession(ctx, "fw_nonsense")
	require.True(t, flywheel.IsAuthError(err))

	t.Run("EndsWithLogout", func(t *testing.T) {
		require.NoError(t, b.auth.EndSession(ctx, cookie))
		res := do(t, b.h, "GET", "/ui/", "", c...)
		require.Equal(t, http.StatusUnauthorized, res.status)
		// The stale cookie is cleared.
		require.Contains(t, res.header.Get("Set-Cookie"), flywheel.SessionCookie+"=;")
	})

	t.Run("EndsWithRevocation", func(t *testing.T) {
		cookie, _, err := b.auth.StartSession(ctx, b.secrets["write"])
		require.NoError(t, err)
		c := []string{"Cookie", flywheel.SessionCookie + "=" + cookie}
		require.Equal(t, http.StatusOK, do(t, b.h, "GET", "/ui/", "", c...).status)
		p, err := b.auth.AuthenticateToken(ctx, b.secrets["write"])
		require.NoError(t, err)
		require.NoError(t, b.store.RevokeToken(ctx, p.TokenID, time.Now()))
		require.Equal(t, http.StatusUnauthorized, do(t, b.h, "GET", "/ui/", "", c...).status)
	})

	t.Run("Expires", func(t *testing.T) {
		clock := time.Now()
		a := server.NewAuth(server.AuthOptions{Store: b.store, Enabled: true, SessionTTL: time.Hour,
			Now: func() time.Time { return clock }})
		cookie, expires, err := a.StartSession(ctx, b.secrets["admin"])
		require.NoError(t, err)
		require.Equal(t, clock.Add(time.Hour), expires)
		_, err = a.AuthenticateSession(ctx, cookie)
		require.NoError(t, err)
		clock = clock.Add(time.Hour)
		_, err = a.AuthenticateSession(ctx, cookie)
		require.True(t, flywheel.IsAuthError(err))
		require.Contains(t, err.Error(), "expired")
	})
}

func TestAuthTokenNotForwarded(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	res := do(t, b.h, "POST", "/v1/chat/completions", `{"model":"m","messages":[]}`, bearer(b.secrets["ingest"])...)
	require.Equal(t, http.StatusOK, res.status)
	require.Equal(t, "capture", string(res.body))
	got := b.last()
	require.Empty(t, got.Header.Get("Authorization"))
	require.Equal(t, flywheel.ScopeIngest, flywheel.PrincipalFrom(got.Context()).Scope)
}

func TestAuthRecordsUse(t *testing.T) {
	t.Parallel()
	b := authSetup(t, true)
	ctx := context.Background()
	p, err := b.auth.AuthenticateToken(ctx, b.secrets["read"])
	require.NoError(t, err)
	tok, err := b.store.GetToken(ctx, p.TokenID)
	require.NoError(t, err)
	require.NotNil(t, tok.LastUsedAt)
	first := *tok.LastUsedAt
	// Within the touch interval a request does not write again.
	_, err = b.auth.AuthenticateToken(ctx, b.secrets["read"])
	require.NoError(t, err)
	tok, err = b.store.GetToken(ctx, p.TokenID)
	require.NoError(t, err)
	require.Equal(t, first, *tok.LastUsedAt)
}

func TestAuthOff(t *testing.T) {
	t.Parallel()
	b := authSetup(t, false)
	for _, tc := range scopeCases() {
		res := do(t, b.h, tc.method, tc.path, tc.body)
		require.NotContains(t, []int{401, 403}, res.status, "%s %s: %s", tc.method, tc.path, res.body)
	}
}

// BenchmarkAuthOverhead measures GET /api/jobs/{id} with authentication
// off and with a bearer token checked against the store, on each database.
func BenchmarkAuthOverhead(b *testing.B) {
	jobs := &servertest.JobService{GetJobFunc: func(_ context.Context, id string) (*flywheel.JobDetail, error) {
		return servertest.Detail(id, flywheel.RunCompleted, start), nil
	}}
	for _, d := range storetest.Dialects() {
		s := storetest.Open(b, d)
		tok := &flywheel.Token{ID: flywheel.NewTokenID(), Name: "bench", Scope: flywheel.ScopeRead}
		secret := flywheel.NewTokenSecret(tok.ID)
		tok.Hash = flywheel.HashSecret(secret)
		require.NoError(b, s.CreateToken(context.Background(), tok))
		for _, on := range []bool{false, true} {
			name := storetest.Name(d) + "/off"
			if on {
				name = storetest.Name(d) + "/bearer"
			}
			b.Run(name, func(b *testing.B) {
				h := server.New(server.Options{Jobs: jobs, Auth: server.NewAuth(server.AuthOptions{Store: s, Enabled: on})})
				b.ReportAllocs()
				for b.Loop() {
					rec := httptest.NewRecorder()
					req := httptest.NewRequest("GET", "/api/jobs/run-1", nil)
					req.Host = "127.0.0.1:8000"
					req.Header.Set("Authorization", "Bearer "+secret)
					h.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("status %d", rec.Code)
					}
				}
			})
		}
	}
}
