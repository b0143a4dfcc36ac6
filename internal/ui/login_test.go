package ui_test

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/server"
	"github.com/flywheel-go/flywheel/internal/server/servertest"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/ui"
)

type loginBundle struct {
	srv     *httptest.Server
	store   *store.Store
	secrets map[flywheel.Scope]string
	ids     map[flywheel.Scope]string
	river   chan *http.Request
}

// loginSetup serves the dashboard and a stand-in for River's UI behind the
// REST server with authentication on (or off), over TLS when tlsOn.
func loginSetup(t *testing.T, enabled, tlsOn bool) *loginBundle {
	t.Helper()
	b := &loginBundle{store: storetest.Open(t, store.SQLite), secrets: map[flywheel.Scope]string{},
		ids: map[flywheel.Scope]string{}, river: make(chan *http.Request, 10)}
	for _, sc := range flywheel.Scopes() {
		tok := &flywheel.Token{ID: flywheel.NewTokenID(), Name: "tok-" + string(sc), Scope: sc}
		secret := flywheel.NewTokenSecret(tok.ID)
		tok.Hash = flywheel.HashSecret(secret)
		require.NoError(t, b.store.CreateToken(context.Background(), tok))
		b.secrets[sc], b.ids[sc] = secret, tok.ID
	}
	jobs := &servertest.JobService{
		ListJobsFunc: func(context.Context, flywheel.JobFilter) (flywheel.JobPage, error) { return flywheel.JobPage{}, nil },
		CancelJobFunc: func(context.Context, string) (string, error) {
			return "Job cancellation initiated successfully.", nil
		},
		GetJobFunc: func(_ context.Context, id string) (*flywheel.JobDetail, error) {
			return servertest.Detail(id, flywheel.RunRunning, time.Now()), nil
		},
	}
	auth := server.NewAuth(server.AuthOptions{Store: b.store, Enabled: enabled})
	river := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.river <- r
		_, _ = w.Write([]byte("river"))
	})
	h := server.New(server.Options{Jobs: jobs, Auth: auth, RiverUI: river,
		UI: ui.New(ui.Options{Jobs: jobs, Prefix: "/ui", Auth: auth})})
	if tlsOn {
		b.srv = httptest.NewTLSServer(h)
	} else {
		b.srv = httptest.NewServer(h)
	}
	t.Cleanup(b.srv.Close)
	return b
}

// browser is a client with a cookie jar that does not follow redirects.
func (b *loginBundle) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := b.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

var htmlAccept = http.Header{"Accept": {"text/html"}}

// sameOrigin is what a browser sends with a form posted from this server's page.
var sameOrigin = http.Header{"Sec-Fetch-Site": {"same-origin"}}

func (b *loginBundle) login(t *testing.T, c *http.Client, next, token string) fetched {
	t.Helper()
	page := do(t, c, http.MethodGet, b.srv.URL+"/ui/login?next="+url.QueryEscape(next), nil, htmlAccept)
	require.Equal(t, http.StatusOK, page.status)
	m := csrfRe.FindStringSubmatch(page.body)
	require.NotNil(t, m, page.body)
	return do(t, c, http.MethodPost, b.srv.URL+"/ui/login", url.Values{"csrf": {m[1]}, "token": {token}, "next": {next}}, sameOrigin)
}

func sessionCookie(t *testing.T, res fetched) *http.Cookie {
	t.Helper()
	for _, line := range res.header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		require.NoError(t, err)
		if c.Name == flywheel.SessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", flywheel.SessionCookie, res.header)
	return nil
}

func TestLoginFlow(t *testing.T) {
	t.Parallel()
	b := loginSetup(t, true, false)
	c := b.browser(t)

	// Without a session a browser is sent to the login page, which comes
	// back to where it was going.
	res := do(t, c, http.MethodGet, b.srv.URL+"/ui/runs/r1", nil, htmlAccept)
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/login?next=%2Fui%2Fruns%2Fr1", res.header.Get("Location"))

	res = b.login(t, c, "/ui/runs/r1", "fw_0123456789abcdef_wrong")
	require.Equal(t, http.StatusUnauthorized, res.status)
	require.Contains(t, res.body, "not valid")
	require.Empty(t, res.header.Values("Set-Cookie"))

	res = b.login(t, c, "/ui/runs/r1", b.secrets[flywheel.ScopeRead])
	require.Equal(t, http.StatusSeeOther, res.status, res.body)
	require.Equal(t, "/ui/runs/r1", res.header.Get("Location"))
	ck := sessionCookie(t, res)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	require.False(t, ck.Secure) // plain HTTP here; see TestLoginCookieSecureOverTLS
	require.Equal(t, "/", ck.Path)
	require.WithinDuration(t, time.Now().Add(server.SessionTTLDefault), ck.Expires, time.Minute)
	// Only the hash is stored.
	_, err := b.store.GetSession(context.Background(), flywheel.HashSecret(ck.Value))
	require.NoError(t, err)
	_, err = b.store.GetSession(context.Background(), ck.Value)
	require.Error(t, err)

	res = do(t, c, http.MethodGet, b.srv.URL+"/ui/runs/r1", nil, htmlAccept)
	require.Equal(t, http.StatusOK, res.status)
	require.Contains(t, res.body, "tok-read")
	require.Contains(t, res.body, "Log out")

	// A read session may not cancel, nor open River's UI.
	m := csrfRe.FindStringSubmatch(res.body)
	require.NotNil(t, m)
	res = do(t, c, http.MethodPost, b.srv.URL+"/ui/runs/r1/cancel", url.Values{"csrf": {m[1]}}, sameOrigin)
	require.Equal(t, http.StatusForbidden, res.status)
	res = do(t, c, http.MethodGet, b.srv.URL+"/ui/river/", nil, htmlAccept)
	require.Equal(t, http.StatusForbidden, res.status)

	// Logout ends the session on the server, not only in the browser.
	res = do(t, c, http.MethodPost, b.srv.URL+"/ui/logout", url.Values{"csrf": {m[1]}}, sameOrigin)
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/login", res.header.Get("Location"))
	require.Equal(t, -1, sessionCookie(t, res).MaxAge)
	_, err = b.store.GetSession(context.Background(), flywheel.HashSecret(ck.Value))
	require.ErrorIs(t, err, flywheel.ErrNotFound)
	replay := http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Accept": {"text/html"}}
	res = do(t, noRedirect(), http.MethodGet, b.srv.URL+"/ui/", nil, replay)
	require.Equal(t, http.StatusSeeOther, res.status)
}

func TestLoginAdminReachesRiver(t *testing.T) {
	t.Parallel()
	b := loginSetup(t, true, false)
	c := b.browser(t)
	res := b.login(t, c, "/ui/river/", b.secrets[flywheel.ScopeAdmin])
	require.Equal(t, http.StatusSeeOther, res.status)
	require.Equal(t, "/ui/river/", res.header.Get("Location"))
	res = do(t, c, http.MethodGet, b.srv.URL+"/ui/river/", nil, htmlAccept)
	require.Equal(t, http.StatusOK, res.status)
	require.Equal(t, "river", res.body)
	r := <-b.river
	require.Equal(t, flywheel.ScopeAdmin, flywheel.PrincipalFrom(r.Context()).Scope)

	// River's JSON API without the session: 401, not a redirect.
	res = do(t, noRedirect(), http.MethodGet, b.srv.URL+"/ui/river/api/jobs", nil, http.Header{"Accept": {"application/json"}})
	require.Equal(t, http.StatusUnauthorized, res.status)
}

func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	b := loginSetup(t, true, false)
	c := b.browser(t)

	// A login form posted by another site is refused.
	page := do(t, c, http.MethodGet, b.srv.URL+"/ui/login", nil, htmlAccept)
	m := csrfRe.FindStringSubmatch(page.body)
	require.NotNil(t, m)
	res := do(t, c, http.MethodPost, b.srv.URL+"/ui/login",
		url.Values{"csrf": {m[1]}, "token": {b.secrets[flywheel.ScopeAdmin]}}, http.Header{"Sec-Fetch-Site": {"cross-site"}})
	require.Equal(t, http.StatusForbidden, res.status)
	require.Empty(t, res.header.Values("Set-Cookie"))
	// Without the form token too.
	res = do(t, c, http.MethodPost, b.srv.URL+"/ui/login", url.Values{"token": {b.secrets[flywheel.ScopeAdmin]}}, sameOrigin)
	require.Equal(t, http.StatusForbidden, res.status)

	// A revoked token cannot log in.
	require.NoError(t, b.store.RevokeToken(context.Background(), b.ids[flywheel.ScopeWrite], time.Now()))
	res = b.login(t, c, "/ui/", b.secrets[flywheel.ScopeWrite])
	require.Equal(t, http.StatusUnauthorized, res.status)

	// next never leads to another site.
	for _, next := range []string{"//evil.example/", "https://evil.example/ui/", "/\\evil.example", "/api/jobs", "/ui/login"} {
		res = b.login(t, c, next, b.secrets[flywheel.ScopeRead])
		require.Equal(t, http.StatusSeeOther, res.status, next)
		require.Equal(t, "/ui/", res.header.Get("Location"), next)
	}
}

func TestLoginCookieSecureOverTLS(t *testing.T) {
	t.Parallel()
	b := loginSetup(t, true, true)
	c := b.browser(t)
	c.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS12
	res := b.login(t, c, "/ui/", b.secrets[flywheel.ScopeRead])
	require.Equal(t, http.StatusSeeOther, res.status)
	ck := sessionCookie(t, res)
	require.True(t, ck.Secure)
	require.True(t, ck.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, ck.SameSite)
}

func TestLoginWithAuthOff(t *testing.T) {
	t.Parallel()
	b := loginSetup(t, false, false)
	res := do(t, noRedirect(), http.MethodGet, b.srv.URL+"/ui/login", nil, htmlAccept)
	require.Equal(t, http.StatusOK, res.status)
	require.True(t, strings.Contains(res.body, "Authentication is off"))
	res = do(t, noRedirect(), http.MethodGet, b.srv.URL+"/ui/", nil, htmlAccept)
	require.Equal(t, http.StatusOK, res.status)
	require.NotContains(t, res.body, "Log out")
}
