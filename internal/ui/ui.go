// Package ui is the operator dashboard: server-rendered html/template pages
// over flywheel.JobService. It lists runs, shows a run's DAG as a timeline per
// candidate, its data statistics, datasets and judge, the candidates' scores
// side by side with a server-rendered SVG chart, and the items where a
// candidate's answer diverged from production's. Runs can be cancelled and
// deleted through forms with a confirmation page. The workload pages draw
// each candidate's scores over runs, and the compare page sets two runs
// side by side with a paired test on the items they share.
//
// Every page reads without JavaScript. A small embedded script refreshes the
// parts that change (the runs table, a live run's timeline) every few
// seconds; without it, pages of live runs refresh themselves.
package ui

import (
	"cmp"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// PrefixDefault is where the dashboard is mounted unless Options.Prefix says otherwise.
const PrefixDefault = "/ui"

// eForbidden is the code of a refused form post (shown as 403).
const eForbidden = "forbidden"

// RefreshIntervalDefault is how often live parts of a page refresh.
const RefreshIntervalDefault = 3 * time.Second

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the dashboard.
type Options struct {
	// Jobs is the service the pages read and act on.
	Jobs flywheel.JobService
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Prefix is the path the handler is mounted at (it receives full paths
	// that start with it); default PrefixDefault.
	Prefix string
	// Now returns the current time (durations of running stages); default time.Now.
	Now func() time.Time
	// RefreshInterval is how often live parts of pages refresh; default
	// RefreshIntervalDefault.
	RefreshInterval time.Duration
	// RiverPath is the link to River's UI; default Prefix + "/river/".
	RiverPath string
	// Auth checks the tokens pasted into the login page and keeps the
	// sessions; nil or disabled, the login page says there is nothing to
	// log in to. Access itself is enforced in front of the dashboard.
	Auth flywheel.Authenticator
	// Audit, when set, is shown at Prefix + "/audit".
	Audit flywheel.AuditLog
	// History, when set, serves the workloads, a workload's trend and the
	// comparison of two runs (Prefix + "/workloads", "/workloads/{id}",
	// "/compare").
	History flywheel.HistoryService
	// Online, when set, serves Prefix + "/online": the promoted
	// candidates' online agreement; Promotions adds their timeline, and
	// the workload pages' Promotions section. When Promotions is a
	// flywheel.PromotionService, admins also get the run page's Promote
	// forms and the Rollback buttons.
	Online     flywheel.OnlineReporter
	Promotions PromotionLister
	// Schedules, when set, is listed at Prefix + "/schedules".
	Schedules flywheel.ScheduleService
}

// Handler serves the dashboard. Build it with New.
type Handler struct {
	opts  Options
	tmpl  *template.Template
	mux   *http.ServeMux
	csrf  string
	cop   *http.CrossOriginProtection
	entry http.Handler
}

// New returns the dashboard handler.
func New(opts Options) http.Handler {
	opts.Prefix = strings.TrimSuffix(cmp.Or(opts.Prefix, PrefixDefault), "/")
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.RefreshInterval = cmp.Or(opts.RefreshInterval, RefreshIntervalDefault)
	opts.RiverPath = cmp.Or(opts.RiverPath, opts.Prefix+"/river/")
	h := &Handler{opts: opts, cop: http.NewCrossOriginProtection()}
	var b [32]byte
	_, _ = rand.Read(b[:])
	h.csrf = hex.EncodeToString(b[:])
	h.tmpl = template.Must(template.New("").Funcs(h.funcs()).Funcs(h.historyFuncs()).ParseFS(templateFS, "templates/*.html"))

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(fmt.Sprintf("ui: embedded static assets: %v", err))
	}
	p := opts.Prefix
	mux := http.NewServeMux()
	mux.Handle("GET "+p+"/static/", http.StripPrefix(p+"/static/", cacheStatic(http.FileServerFS(static))))
	mux.HandleFunc("GET "+p+"/{$}", h.runsPage)
	mux.HandleFunc("GET "+p+"/login", h.loginPage)
	mux.HandleFunc("POST "+p+"/login", h.login)
	mux.HandleFunc("POST "+p+"/logout", h.logout)
	mux.HandleFunc("GET "+p+"/audit", h.auditPage)
	mux.HandleFunc("GET "+p+"/online", h.onlinePage)
	mux.HandleFunc("GET "+p+"/schedules", h.schedulesPage)
	mux.HandleFunc("GET "+p+"/runs/rows", h.runsRows)
	mux.HandleFunc("GET "+p+"/workloads", h.workloadsPage)
	mux.HandleFunc("GET "+p+"/workloads/{id}", h.workloadPage)
	mux.HandleFunc("GET "+p+"/workloads/{id}/timeline", h.workloadTimelinePage)
	mux.HandleFunc("GET "+p+"/compare", h.comparePage)
	mux.HandleFunc("GET "+p+"/runs/{id}", h.runPage)
	mux.HandleFunc("GET "+p+"/runs/{id}/timeline", h.timelineFragment)
	mux.HandleFunc("GET "+p+"/runs/{id}/results", h.resultsPage)
	mux.HandleFunc("GET "+p+"/runs/{id}/divergences", h.divergencesPage)
	mux.HandleFunc("GET "+p+"/runs/{id}/cancel", h.confirmPage(actionCancel))
	mux.HandleFunc("POST "+p+"/runs/{id}/cancel", h.act(actionCancel))
	mux.HandleFunc("GET "+p+"/runs/{id}/delete", h.confirmPage(actionDelete))
	mux.HandleFunc("POST "+p+"/runs/{id}/delete", h.act(actionDelete))
	mux.HandleFunc("POST "+p+"/runs/{id}/promote", h.promote)
	mux.HandleFunc("POST "+p+"/promotions/{id}/rollback", h.rollback)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, flywheel.Errorf(flywheel.ENOTFOUND, "There is no page at %s.", r.URL.Path))
	})
	h.mux = mux
	h.entry = h.recoverPanics(mux)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy",
		"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
	h.entry.ServeHTTP(w, r)
}

func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.errorPage(w, r, fmt.Errorf("panic serving %s: %v", r.URL.Path, v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// checkForm rejects cross-site form posts: the browser's Sec-Fetch-Site or
// Origin must say same origin, and the form must carry this process's token.
func (h *Handler) checkForm(r *http.Request) error {
	if err := h.cop.Check(r); err != nil {
		return flywheel.Errorf(eForbidden, "This form was sent from another site and was refused.")
	}
	if err := r.ParseForm(); err != nil {
		return flywheel.Errorf(flywheel.EINVALID, "The form could not be read.")
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(h.csrf)) != 1 {
		return flywheel.Errorf(eForbidden, "This form has expired (the server restarted). Go back, reload the page and try again.")
	}
	return nil
}

// statusOf maps an error's code to the HTTP status of its page.
func statusOf(err error) int {
	switch flywheel.ErrorCode(err) {
	case flywheel.EINVALID, flywheel.EUNPROCESSABLE:
		return http.StatusBadRequest
	case flywheel.ENOTFOUND:
		return http.StatusNotFound
	case flywheel.ECONFLICT, flywheel.EPRECONDITION:
		return http.StatusConflict
	case flywheel.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case eForbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

type errorView struct {
	page
	Status  int
	Title   string
	Message string
}

// errorPage shows err as a page with the status of its code. Internal
// errors are logged and shown as a generic message, never with details.
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if status >= 500 && !errors.Is(err, r.Context().Err()) {
		h.opts.Logger.ErrorContext(r.Context(), "Dashboard request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	msg := flywheel.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		msg = "Something went wrong on the server. The error was logged; try again in a moment."
	}
	v := errorView{page: h.page(r, http.StatusText(status)), Status: status, Title: http.StatusText(status), Message: msg}
	h.render(w, r, status, "error", v)
}
