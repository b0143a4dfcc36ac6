package server

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Security headers the guard puts on every response.
const (
	// FrameAncestorsNone is the Content-Security-Policy directive that forbids
	// framing; it is added to a policy a handler sets without one.
	FrameAncestorsNone = "frame-ancestors 'none'"
)

// HostPolicy decides which Host header values the server answers: the
// defence against DNS rebinding, where a page of a name the attacker
// controls is re-pointed at this server and reads its answers as its own.
//
// Always allowed: "localhost" and its subdomains (browsers resolve them
// to the loopback address themselves), every IP address literal (an
// attacker's page never has this server's IP as its origin, so a rebound
// request always carries the attacker's name) and a request without a
// Host. Configured entries are exact names ("flywheel.example.com"),
// "*.suffix" for every subdomain of suffix, or "*" for any name (which
// turns the protection off). Ports are ignored.
type HostPolicy struct {
	exact    map[string]bool
	suffixes []string
	any      bool
	listen   string
}

// NewHostPolicy returns the policy that allows the default names, the
// names in allowed, and the host of listenAddr when that is a name.
func NewHostPolicy(allowed []string, listenAddr string) HostPolicy {
	p := HostPolicy{exact: map[string]bool{}}
	for _, a := range allowed {
		a = normalizeHost(a)
		switch {
		case a == "":
		case a == "*":
			p.any = true
		case strings.HasPrefix(a, "*."):
			p.suffixes = append(p.suffixes, a[1:]) // keeps the dot
		default:
			p.exact[a] = true
		}
	}
	if host, _, err := net.SplitHostPort(listenAddr); err == nil {
		p.listen = normalizeHost(host)
	}
	return p
}

// Allows reports whether host (a Host header: name or address, with or
// without a port) is served.
func (p HostPolicy) Allows(host string) bool {
	h := normalizeHost(host)
	switch {
	case h == "" || p.any:
		return true
	case h == "localhost" || strings.HasSuffix(h, ".localhost"):
		return true
	case net.ParseIP(h) != nil:
		return true
	case p.exact[h] || h == p.listen:
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// configured reports whether host matches a configured entry (not a
// default, nor the listen address): an Origin other than the server's own
// is trusted on that basis only.
func (p HostPolicy) configured(host string) bool {
	h := normalizeHost(host)
	if h == "" {
		return false
	}
	if p.any || p.exact[h] {
		return true
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// normalizeHost lower-cases host and strips its port, IPv6 brackets and a
// trailing dot.
func normalizeHost(host string) string {
	host = strings.ToLower(strings.TrimSpace(host))
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return strings.TrimSuffix(host, ".")
}

// guard protects every route and mount, whether or not authentication is
// on: it refuses foreign Host headers (DNS rebinding) and state-changing
// requests a browser sends on behalf of another site (cross-site request
// forgery), and marks every response as not to be framed or sniffed.
//
// A state-changing request (POST, PUT, PATCH, DELETE) passes when
//   - its Sec-Fetch-Site is same-origin or none (browsers set it and pages
//     cannot forge it); any other value is refused;
//   - without Sec-Fetch-Site, its Origin is this server's own (same
//     host and port as the Host header) or a configured allowed host;
//   - without either header (curl, SDKs, the flywheel client), it has a JSON
//     or NDJSON content type, or no body at all. The bodies a page can send
//     cross-site without the browser asking first (form posts and
//     text/plain) are refused. The dashboard's own form posts pass on to the
//     dashboard, which requires its form token. Under /v1/ (the OpenAI
//     gateway), any content type passes with an "Authorization: Bearer"
//     header: the OpenAI SDKs send one on every call, file uploads
//     (multipart/form-data to /v1/files, /v1/audio/…, /v1/uploads/…)
//     included, while a page can only have a browser send it cross-site
//     after a CORS preflight, which this server never grants; and browsers
//     add Authorization on their own only with other schemes (Basic,
//     Digest, Negotiate), never Bearer.
func (s *Server) guard(next http.Handler) http.Handler {
	policy := NewHostPolicy(s.opts.AllowedHosts, s.opts.ListenAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", FrameAncestorsNone)
		w = &frameGuard{ResponseWriter: w}

		if !policy.Allows(r.Host) {
			writeDetail(w, http.StatusMisdirectedRequest, fmt.Sprintf(
				"This server does not answer to the host name %q; if it should, add it to the server.allowed_hosts setting",
				clip(r.Host, 100)))
			return
		}
		if status, detail := s.crossSiteRefusal(r, policy); status != 0 {
			writeDetail(w, status, detail)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossSiteRefusal returns the status and detail of a refused
// state-changing request, or 0.
func (s *Server) crossSiteRefusal(r *http.Request, policy HostPolicy) (int, string) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return 0, ""
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		if site == "same-origin" || site == "none" {
			return 0, ""
		}
		return http.StatusForbidden, fmt.Sprintf(
			"Refused a %s request sent by a web page of another site (Sec-Fetch-Site: %s)", r.Method, clip(site, 40))
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if originAllowed(origin, r.Host, policy) {
			return 0, ""
		}
		return http.StatusForbidden, fmt.Sprintf(
			"Refused a %s request sent by a web page of another origin (%s); if that origin serves this API, add its host name to the server.allowed_hosts setting",
			r.Method, clip(origin, 100))
	}
	ct := r.Header.Get("Content-Type")
	if s.dashboardForm(r, ct) {
		return 0, ""
	}
	if ct == "" && r.ContentLength == 0 {
		return 0, ""
	}
	if jsonMediaType(ct) {
		return 0, ""
	}
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
			return 0, ""
		}
		return http.StatusUnsupportedMediaType, fmt.Sprintf(
			"%s %s with Content-Type %q needs an Authorization: Bearer header (a Flywheel token, or any value when authentication is off), as the OpenAI SDKs send; or a JSON body",
			r.Method, clip(r.URL.Path, 100), clip(ct, 60))
	}
	return http.StatusUnsupportedMediaType, fmt.Sprintf(
		"%s %s needs a JSON body: send Content-Type: application/json (application/x-ndjson for /api/logs), not %q",
		r.Method, clip(r.URL.Path, 100), clip(ct, 60))
}

// dashboardForm reports whether r is a form post to the dashboard (not
// River's UI): the dashboard checks its own form token.
func (s *Server) dashboardForm(r *http.Request, ct string) bool {
	mt, _, _ := mime.ParseMediaType(ct)
	if s.opts.UI == nil || mt != "application/x-www-form-urlencoded" || !strings.HasPrefix(r.URL.Path, "/ui/") {
		return false
	}
	return s.opts.RiverUI == nil || !strings.HasPrefix(r.URL.Path, "/ui/river/")
}

// originAllowed reports whether an Origin header names this server: the
// same host and port as the request's Host, or a configured host.
func originAllowed(origin, host string, policy HostPolicy) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // includes "null"
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	return policy.configured(u.Hostname())
}

// jsonMediaType reports whether ct is JSON or newline-delimited JSON.
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/x-ndjson", "application/ndjson", "application/jsonl",
		"application/x-jsonl", "application/jsonlines", "application/x-jsonlines":
		return true
	}
	return strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")
}

// clip shortens s for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// frameGuard makes sure the response forbids framing when its header is
// written: a handler that replaced the guard's Content-Security-Policy with
// one lacking frame-ancestors gets a second policy with it.
type frameGuard struct {
	http.ResponseWriter
	wrote bool
}

func (f *frameGuard) fix() {
	if f.wrote {
		return
	}
	f.wrote = true
	h := f.ResponseWriter.Header()
	for _, v := range h.Values("Content-Security-Policy") {
		if strings.Contains(strings.ToLower(v), "frame-ancestors") {
			return
		}
	}
	// Every policy sent is enforced: a second one adds the directive
	// without changing the handler's.
	h.Add("Content-Security-Policy", FrameAncestorsNone)
}

func (f *frameGuard) WriteHeader(status int) {
	f.fix()
	f.ResponseWriter.WriteHeader(status)
}

func (f *frameGuard) Write(b []byte) (int, error) {
	f.fix()
	return f.ResponseWriter.Write(b)
}

// Flush lets streaming handlers flush through.
func (f *frameGuard) Flush() {
	f.fix()
	_ = http.NewResponseController(f.ResponseWriter).Flush()
}

// Unwrap gives http.ResponseController the underlying writer.
func (f *frameGuard) Unwrap() http.ResponseWriter { return f.ResponseWriter }
