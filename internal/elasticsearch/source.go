// Package elasticsearch reads logged records from the Elasticsearch index of
// an existing Data Flywheel Blueprint deployment (index "flywheel", the
// 5-field schema: workload_id, client_id, timestamp, request, response). It
// implements flywheel.RecordSource with the official Go client, adding what
// the blueprint lacks: basic auth, API keys and TLS options.
//
// Pages are read newest first with search_after over a point in time (PIT),
// sorted by timestamp and the PIT's _shard_doc tiebreaker, so records are
// neither skipped nor repeated while the index changes. Clusters that refuse
// a PIT (older Elasticsearch, OpenSearch) are read with the scroll API
// instead, as the blueprint does.
package elasticsearch

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	es "github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/redact"
)

// Defaults of Config.
const (
	IndexDefault     = "flywheel"
	PageSizeDefault  = 1000
	KeepAliveDefault = 2 * time.Minute
	TimeoutDefault   = 60 * time.Second
)

// Config configures a Source.
type Config struct {
	// Addresses are the cluster's URLs (for example "https://es:9200").
	Addresses []string
	// Index is the log index (default IndexDefault).
	Index string
	// Username and Password enable HTTP basic auth.
	Username string
	Password string
	// APIKey is a base64 "id:key" API key; it takes precedence over basic auth.
	APIKey string
	// CACertFile is a PEM file of certificate authorities to trust instead
	// of the system's.
	CACertFile string
	// InsecureSkipVerify disables TLS certificate checks (testing only).
	InsecureSkipVerify bool
	// PageSize is the number of records per request (default
	// PageSizeDefault, at most 10000).
	PageSize int
	// KeepAlive is how long the cluster keeps the PIT or scroll between
	// pages (default KeepAliveDefault).
	KeepAlive time.Duration
	// Timeout bounds each HTTP request (default TimeoutDefault).
	Timeout time.Duration
	// Transport, when set, replaces the HTTP transport built from the TLS
	// options (tests).
	Transport http.RoundTripper
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
	// Now stamps records without a timestamp (default time.Now).
	Now flywheel.Clock
	// Redactor, when set, redacts every record read before it is used.
	Redactor *redact.Redactor
}

// Source reads logged records from Elasticsearch. It is safe for
// concurrent use.
type Source struct {
	client    *es.Client
	index     string
	pageSize  int
	keepAlive string
	logger    *slog.Logger
	now       flywheel.Clock
	redactor  *redact.Redactor
}

var _ flywheel.RecordSource = (*Source)(nil)

// New returns a Source for cfg. It fails when no address is given or the CA
// file cannot be read.
func New(cfg Config) (*Source, error) {
	if len(cfg.Addresses) == 0 {
		return nil, flywheel.Errorf(flywheel.EINVALID, "elasticsearch: no address given")
	}
	transport := cfg.Transport
	if transport == nil {
		tlsCfg := &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in for test clusters
		if cfg.CACertFile != "" {
			pem, err := os.ReadFile(cfg.CACertFile)
			if err != nil {
				return nil, flywheel.Errorf(flywheel.EINVALID, "elasticsearch: read CA file: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, flywheel.Errorf(flywheel.EINVALID, "elasticsearch: no PEM certificate in CA file %s", cfg.CACertFile)
			}
			tlsCfg.RootCAs = pool
		}
		timeout := cmp.Or(cfg.Timeout, TimeoutDefault)
		transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsCfg,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
		}
	}
	client, err := es.NewClient(es.Config{
		Addresses: cfg.Addresses,
		Username:  cfg.Username,
		Password:  cfg.Password,
		APIKey:    cfg.APIKey,
		Transport: transport,
	})
	if err != nil {
		return nil, flywheel.Errorf(flywheel.EINVALID, "elasticsearch: %v", err)
	}
	pageSize := cmp.Or(cfg.PageSize, PageSizeDefault)
	pageSize = min(max(pageSize, 1), 10000)
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Source{
		client:    client,
		index:     cmp.Or(cfg.Index, IndexDefault),
		pageSize:  pageSize,
		keepAlive: fmt.Sprintf("%ds", int(cmp.Or(cfg.KeepAlive, KeepAliveDefault).Seconds())),
		logger:    logger.With("component", "elasticsearch"),
		now:       now,
		redactor:  cfg.Redactor,
	}, nil
}

// errNoPIT says the cluster refused to open a point in time.
var errNoPIT = errors.New("point in time not supported")

// NewestRecords implements flywheel.RecordSource: up to limit records of
// the workload and client, newest first (limit <= 0: all of them).
func (s *Source) NewestRecords(ctx context.Context, workloadID, clientID string, limit int) ([]flywheel.LogRecord, error) {
	recs, err := s.searchAfter(ctx, workloadID, clientID, limit)
	if errors.Is(err, errNoPIT) {
		s.logger.InfoContext(ctx, "Point in time refused; reading with scroll", slog.String("error", err.Error()))
		recs, err = s.scroll(ctx, workloadID, clientID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read index %s: %w", s.index, err)
	}
	s.redactor.Batch(redact.PathES, recs)
	return recs, nil
}

// query is the search filter: exact matches on both ids.
func query(workloadID, clientID string) map[string]any {
	return map[string]any{"bool": map[string]any{"filter": []any{
		map[string]any{"term": map[string]any{"workload_id": workloadID}},
		map[string]any{"term": map[string]any{"client_id": clientID}},
	}}}
}

// sourceFields are the document fields read.
func sourceFields() []string {
	return []string{"workload_id", "client_id", "timestamp", "request", "response"}
}

// searchReply is the part of a search reply used here.
type searchReply struct {
	PitID    string `json:"pit_id"`
	ScrollID string `json:"_scroll_id"`
	Hits     struct {
		Hits []struct {
			ID     string          `json:"_id"`
			Source json.RawMessage `json:"_source"`
			Sort   []any           `json:"sort"`
		} `json:"hits"`
	} `json:"hits"`
}

func (s *Source) searchAfter(ctx context.Context, workloadID, clientID string, limit int) ([]flywheel.LogRecord, error) {
	res, err := s.client.OpenPointInTime([]string{s.index}, s.keepAlive, s.client.OpenPointInTime.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("open point in time: %w", err)
	}
	var pit struct {
		ID string `json:"id"`
	}
	if err := decode(res, &pit); err != nil {
		if res.StatusCode == http.StatusBadRequest || res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusMethodNotAllowed {
			return nil, errors.Join(errNoPIT, err)
		}
		return nil, fmt.Errorf("open point in time: %w", err)
	}
	pitID := pit.ID
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		body, _ := json.Marshal(map[string]string{"id": pitID})
		res, err := s.client.ClosePointInTime(s.client.ClosePointInTime.WithContext(cctx), s.client.ClosePointInTime.WithBody(bytes.NewReader(body)))
		if err == nil {
			err = decode(res, nil)
		}
		if err != nil {
			s.logger.WarnContext(ctx, "Closing point in time failed", slog.String("error", err.Error()))
		}
	}()

	var out []flywheel.LogRecord
	var after []any
	for limit <= 0 || len(out) < limit {
		size := s.pageSize
		if limit > 0 {
			size = min(size, limit-len(out))
		}
		body := map[string]any{
			"size":             size,
			"query":            query(workloadID, clientID),
			"sort":             []any{map[string]any{"timestamp": map[string]any{"order": "desc"}}, map[string]any{"_shard_doc": "desc"}},
			"pit":              map[string]any{"id": pitID, "keep_alive": s.keepAlive},
			"_source":          sourceFields(),
			"track_total_hits": false,
		}
		if after != nil {
			body["search_after"] = after
		}
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode search: %w", err)
		}
		res, err := s.client.Search(s.client.Search.WithContext(ctx), s.client.Search.WithBody(bytes.NewReader(b)))
		if err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		var reply searchReply
		if err := decode(res, &reply); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
		if reply.PitID != "" {
			pitID = reply.PitID
		}
		hits := reply.Hits.Hits
		for _, h := range hits {
			out = append(out, s.record(ctx, h.ID, h.Source, workloadID, clientID))
		}
		if len(hits) < size || len(hits) == 0 {
			break
		}
		after = hits[len(hits)-1].Sort
		if len(after) == 0 {
			return nil, errors.New("search: hits carry no sort values")
		}
	}
	return out, nil
}

func (s *Source) scroll(ctx context.Context, workloadID, clientID string, limit int) ([]flywheel.LogRecord, error) {
	size := s.pageSize
	if limit > 0 {
		size = min(size, limit)
	}
	b, err := json.Marshal(map[string]any{
		"size":    size,
		"query":   query(workloadID, clientID),
		"sort":    []any{map[string]any{"timestamp": map[string]any{"order": "desc"}}},
		"_source": sourceFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("encode search: %w", err)
	}
	keep, _ := time.ParseDuration(s.keepAlive)
	res, err := s.client.Search(s.client.Search.WithContext(ctx), s.client.Search.WithIndex(s.index),
		s.client.Search.WithBody(bytes.NewReader(b)), s.client.Search.WithScroll(keep))
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	var reply searchReply
	if err := decode(res, &reply); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	scrollID := reply.ScrollID
	defer func() {
		if scrollID == "" {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		body, _ := json.Marshal(map[string]any{"scroll_id": []string{scrollID}})
		res, err := s.client.ClearScroll(s.client.ClearScroll.WithContext(cctx), s.client.ClearScroll.WithBody(bytes.NewReader(body)))
		if err == nil {
			err = decode(res, nil)
		}
		if err != nil {
			s.logger.WarnContext(ctx, "Clearing scroll failed", slog.String("error", err.Error()))
		}
	}()
	var out []flywheel.LogRecord
	for {
		for _, h := range reply.Hits.Hits {
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
			out = append(out, s.record(ctx, h.ID, h.Source, workloadID, clientID))
		}
		if len(reply.Hits.Hits) == 0 || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		// The id goes in the body: scroll ids can outgrow a URL.
		body, _ := json.Marshal(map[string]string{"scroll_id": scrollID, "scroll": s.keepAlive})
		res, err := s.client.Scroll(s.client.Scroll.WithContext(ctx), s.client.Scroll.WithBody(bytes.NewReader(body)))
		if err != nil {
			return nil, fmt.Errorf("scroll: %w", err)
		}
		reply = searchReply{}
		if err := decode(res, &reply); err != nil {
			return nil, fmt.Errorf("scroll: %w", err)
		}
		if reply.ScrollID != "" {
			scrollID = reply.ScrollID
		}
	}
}

// record turns a document into a LogRecord; missing ids take the ones
// searched for, a missing or unreadable timestamp the current time.
func (s *Source) record(ctx context.Context, id string, src json.RawMessage, workloadID, clientID string) flywheel.LogRecord {
	var doc struct {
		WorkloadID string          `json:"workload_id"`
		ClientID   string          `json:"client_id"`
		Timestamp  json.RawMessage `json:"timestamp"`
		Request    json.RawMessage `json:"request"`
		Response   json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(src, &doc); err != nil {
		s.logger.WarnContext(ctx, "Unreadable document", slog.String("id", id), slog.String("error", err.Error()))
	}
	ts, ok := ingest.ParseTimestamp(doc.Timestamp, s.now)
	if !ok {
		s.logger.WarnContext(ctx, "Unreadable timestamp; using now", slog.String("id", id), slog.String("timestamp", string(doc.Timestamp)))
		ts = s.now().UTC()
	}
	return flywheel.LogRecord{
		WorkloadID: cmp.Or(doc.WorkloadID, workloadID),
		ClientID:   cmp.Or(doc.ClientID, clientID),
		Timestamp:  ts,
		Request:    doc.Request,
		Response:   doc.Response,
	}
}

// decode reads a reply into v (nil: discards it), turning error statuses
// into errors; 4xx errors are permanent.
func decode(res *esapi.Response, v any) error {
	defer res.Body.Close()
	if res.IsError() {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
		err := fmt.Errorf("status %d: %s", res.StatusCode, bytes.TrimSpace(body))
		if res.StatusCode >= 400 && res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests && res.StatusCode != http.StatusRequestTimeout {
			return flywheel.Permanent(err)
		}
		return err
	}
	if v == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return fmt.Errorf("decode reply: %w", err)
	}
	return nil
}
