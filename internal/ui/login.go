package ui

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// loginView is the login page.
type loginView struct {
	page
	Next    string
	Error   string
	Enabled bool
}

// safeNext returns next when it is a path of the dashboard or River's UI
// on this server, and the dashboard's start page otherwise (never another
// site: "//evil.example" and "/\evil.example" are refused).
func (h *Handler) safeNext(next string) string {
	home := h.opts.Prefix + "/"
	if next == "" || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return home
	}
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" || !strings.HasPrefix(u.Path, home) || strings.HasPrefix(u.Path, h.opts.Prefix+"/login") {
		return home
	}
	return next
}

func (h *Handler) authEnabled() bool { return h.opts.Auth != nil && h.opts.Auth.Enabled() }

// loginPage shows the form that takes an API token.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	v := loginView{page: h.page(r, "Log in"), Next: h.safeNext(r.URL.Query().Get("next")), Enabled: h.authEnabled()}
	h.render(w, r, http.StatusOK, "login", v)
}

// login checks the pasted token and opens a session: an HttpOnly,
// SameSite=Strict cookie (Secure over TLS) that holds a random secret
// whose hash the server keeps.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if err := h.checkForm(r); err != nil {
		h.errorPage(w, r, err)
		return
	}
	next := h.safeNext(r.PostForm.Get("next"))
	if !h.authEnabled() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	cookie, expires, err := h.opts.Auth.StartSession(r.Context(), token)
	if err != nil {
		status := http.StatusUnauthorized
		msg := "That token is not valid: it is unknown, revoked or expired."
		if !flywheel.IsAuthError(err) {
			h.opts.Logger.ErrorContext(r.Context(), "Dashboard login failed", "error", err)
			status, msg = http.StatusServiceUnavailable, "The login could not be checked right now; try again in a moment."
		}
		v := loginView{page: h.page(r, "Log in"), Next: next, Error: msg, Enabled: true}
		h.render(w, r, status, "login", v)
		return
	}
	http.SetCookie(w, h.sessionCookie(r, cookie, expires))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if err := h.checkForm(r); err != nil {
		h.errorPage(w, r, err)
		return
	}
	if c, err := r.Cookie(flywheel.SessionCookie); err == nil && h.opts.Auth != nil {
		if err := h.opts.Auth.EndSession(r.Context(), c.Value); err != nil {
			h.errorPage(w, r, err)
			return
		}
	}
	c := h.sessionCookie(r, "", time.Time{})
	c.MaxAge = -1
	http.SetCookie(w, c)
	http.Redirect(w, r, h.opts.Prefix+"/login", http.StatusSeeOther)
}

// sessionCookie is the session cookie with its attributes.
func (h *Handler) sessionCookie(r *http.Request, value string, expires time.Time) *http.Cookie {
	return &http.Cookie{
		Name: flywheel.SessionCookie, Value: value, Path: "/", Expires: expires,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	}
}

// user is the name shown beside the logout button: the token a session
// was opened with.
func user(r *http.Request) string {
	if p := flywheel.PrincipalFrom(r.Context()); p != nil && p.Session {
		return p.Name
	}
	return ""
}
