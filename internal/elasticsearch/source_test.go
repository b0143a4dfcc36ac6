package elasticsearch_test

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/elasticsearch"
	"github.com/flywheel-go/flywheel/internal/flywheel"
)

type doc struct {
	id  int
	src map[string]any
	ts  int64 // sort value
}

// fakeES speaks enough of the Elasticsearch search contract for the
// Source: point in time, search with search_after, scroll, and their
// cleanup. It records every request body and the auth headers.
type fakeES struct {
	t         *testing.T
	mu        sync.Mutex
	docs      []doc
	noPIT     bool
	failWith  int
	searches  []map[string]any
	auth      []string
	pitsOpen  map[string]bool
	scrolls   map[string][]doc
	scrollsIn int
}

func newFakeES(t *testing.T) *fakeES {
	return &fakeES{t: t, pitsOpen: map[string]bool{}, scrolls: map[string][]doc{}}
}

func (f *fakeES) add(id int, workload, client string, ts any, sortTS int64) {
	f.docs = append(f.docs, doc{id: id, ts: sortTS, src: map[string]any{
		"workload_id": workload, "client_id": client, "timestamp": ts,
		"request":  map[string]any{"messages": []any{map[string]any{"role": "user", "content": fmt.Sprintf("q%d", id)}}},
		"response": map[string]any{"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": "a"}}}},
	}})
}

// matching returns the docs of the query's terms, sorted by timestamp desc
// then id desc (the _shard_doc tiebreaker).
func (f *fakeES) matching(body map[string]any) []doc {
	filters := body["query"].(map[string]any)["bool"].(map[string]any)["filter"].([]any)
	want := map[string]string{}
	for _, fl := range filters {
		for k, v := range fl.(map[string]any)["term"].(map[string]any) {
			want[k] = v.(string)
		}
	}
	var out []doc
	for _, d := range f.docs {
		if d.src["workload_id"] == want["workload_id"] && d.src["client_id"] == want["client_id"] {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b doc) int {
		if a.ts != b.ts {
			return int(b.ts - a.ts)
		}
		return b.id - a.id
	})
	return out
}

func hitsJSON(docs []doc) []any {
	hits := []any{}
	for _, d := range docs {
		hits = append(hits, map[string]any{"_id": strconv.Itoa(d.id), "_source": d.src, "sort": []any{d.ts, d.id}})
	}
	return hits
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	body, _ := io.ReadAll(r.Body)
	var req map[string]any
	if len(body) > 0 {
		require.NoError(f.t, json.Unmarshal(body, &req), "body %s", body)
	}
	reply := func(status int, v any) {
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if f.failWith != 0 && r.URL.Path != "/_pit" {
		reply(f.failWith, map[string]any{"error": map[string]any{"type": "boom"}, "status": f.failWith})
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/flywheel/_pit":
		if f.noPIT {
			reply(http.StatusBadRequest, map[string]any{"error": "no PIT here"})
			return
		}
		require.NotEmpty(f.t, r.URL.Query().Get("keep_alive"))
		id := fmt.Sprintf("pit-%d", len(f.pitsOpen)+1)
		f.pitsOpen[id] = true
		reply(http.StatusOK, map[string]any{"id": id})
	case r.Method == http.MethodPost && r.URL.Path == "/_search":
		f.searches = append(f.searches, req)
		pit := req["pit"].(map[string]any)
		require.True(f.t, f.pitsOpen[pit["id"].(string)], "search on an open PIT")
		all := f.matching(req)
		start := 0
		if after, ok := req["search_after"].([]any); ok {
			ts, id := int64(after[0].(float64)), int(after[1].(float64))
			for start < len(all) && (all[start].ts > ts || (all[start].ts == ts && all[start].id >= id)) {
				start++
			}
		}
		size := int(req["size"].(float64))
		end := min(start+size, len(all))
		reply(http.StatusOK, map[string]any{"pit_id": pit["id"], "hits": map[string]any{"hits": hitsJSON(all[start:end])}})
	case r.Method == http.MethodDelete && r.URL.Path == "/_pit":
		delete(f.pitsOpen, req["id"].(string))
		reply(http.StatusOK, map[string]any{"succeeded": true})
	case r.Method == http.MethodPost && r.URL.Path == "/flywheel/_search":
		require.NotEmpty(f.t, r.URL.Query().Get("scroll"))
		f.searches = append(f.searches, req)
		all := f.matching(req)
		size := int(req["size"].(float64))
		id := fmt.Sprintf("scroll-%d", len(f.scrolls)+1)
		f.scrolls[id] = all[min(size, len(all)):]
		reply(http.StatusOK, map[string]any{"_scroll_id": id, "hits": map[string]any{"hits": hitsJSON(all[:min(size, len(all))])}})
	case r.Method == http.MethodPost && r.URL.Path == "/_search/scroll":
		f.scrollsIn++
		id, _ := req["scroll_id"].(string)
		require.NotEmpty(f.t, req["scroll"], "keep-alive renewed")
		rest := f.scrolls[id]
		size := int(f.searches[len(f.searches)-1]["size"].(float64))
		n := min(size, len(rest))
		f.scrolls[id] = rest[n:]
		reply(http.StatusOK, map[string]any{"_scroll_id": id, "hits": map[string]any{"hits": hitsJSON(rest[:n])}})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/_search/scroll"):
		ids, _ := req["scroll_id"].([]any)
		for _, id := range ids {
			delete(f.scrolls, id.(string))
		}
		reply(http.StatusOK, map[string]any{"succeeded": true})
	default:
		reply(http.StatusNotFound, map[string]any{"error": "no route " + r.Method + " " + r.URL.String()})
	}
}

type testBundle struct {
	fake *fakeES
	srv  *httptest.Server
}

func setup(t *testing.T, tlsServer bool) *testBundle {
	t.Helper()
	f := newFakeES(t)
	// 25 records of w/c with mixed timestamp formats, plus others.
	for i := range 25 {
		sec := int64(1_700_000_000 + i*10)
		var ts any = sec
		switch i % 3 {
		case 1:
			ts = sec * 1000
		case 2:
			ts = time.Unix(sec, 0).UTC().Format(time.RFC3339)
		}
		f.add(i, "w", "c", ts, sec)
	}
	f.add(100, "w", "other", 1_800_000_000, 1_800_000_000)
	f.add(101, "other", "c", 1_800_000_000, 1_800_000_000)
	var srv *httptest.Server
	if tlsServer {
		srv = httptest.NewUnstartedServer(f)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted client's handshake errors
		srv.StartTLS()
	} else {
		srv = httptest.NewServer(f)
	}
	t.Cleanup(srv.Close)
	return &testBundle{fake: f, srv: srv}
}

func TestNewestRecords(t *testing.T) {
	t.Parallel()

	t.Run("PagesWithSearchAfter", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		src, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}, PageSize: 10, Username: "elastic", Password: "secret"})
		require.NoError(t, err)
		recs, err := src.NewestRecords(context.Background(), "w", "c", 0)
		require.NoError(t, err)
		require.Len(t, recs, 25)
		for i, r := range recs {
			want := 24 - i
			require.Equal(t, "w", r.WorkloadID)
			require.Equal(t, "c", r.ClientID)
			require.Equal(t, time.Unix(int64(1_700_000_000+want*10), 0).UTC(), r.Timestamp, "record %d", i)
			require.Contains(t, string(r.Request), fmt.Sprintf(`"q%d"`, want))
			require.Contains(t, string(r.Response), `"assistant"`)
		}
		require.Len(t, b.fake.searches, 3)
		for i, s := range b.fake.searches {
			require.Equal(t, float64(10), s["size"])
			require.Equal(t, []any{
				map[string]any{"term": map[string]any{"workload_id": "w"}},
				map[string]any{"term": map[string]any{"client_id": "c"}},
			}, s["query"].(map[string]any)["bool"].(map[string]any)["filter"])
			require.Equal(t, map[string]any{"timestamp": map[string]any{"order": "desc"}}, s["sort"].([]any)[0])
			require.ElementsMatch(t, []any{"workload_id", "client_id", "timestamp", "request", "response"}, s["_source"])
			if i == 0 {
				require.NotContains(t, s, "search_after")
			} else {
				// after the last hit of the page before: 10 newest, then 10 more
				wantTS := float64(1_700_000_000 + (25-10*i)*10)
				require.Equal(t, []any{wantTS, float64(25 - 10*i)}, s["search_after"])
			}
		}
		require.Empty(t, b.fake.pitsOpen, "PIT closed")
		for _, a := range b.fake.auth {
			require.Equal(t, "Basic ZWxhc3RpYzpzZWNyZXQ=", a)
		}
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		src, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}, PageSize: 10, APIKey: "a2V5OnNlY3JldA=="})
		require.NoError(t, err)
		recs, err := src.NewestRecords(context.Background(), "w", "c", 13)
		require.NoError(t, err)
		require.Len(t, recs, 13)
		require.Contains(t, string(recs[12].Request), `"q12"`)
		require.Len(t, b.fake.searches, 2)
		require.Equal(t, float64(3), b.fake.searches[1]["size"])
		require.True(t, strings.EqualFold("ApiKey a2V5OnNlY3JldA==", b.fake.auth[0]), "Authorization %q", b.fake.auth[0])
	})

	t.Run("ScrollWhenNoPIT", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		b.fake.noPIT = true
		src, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}, PageSize: 10})
		require.NoError(t, err)
		recs, err := src.NewestRecords(context.Background(), "w", "c", 22)
		require.NoError(t, err)
		require.Len(t, recs, 22)
		require.Contains(t, string(recs[0].Request), `"q24"`)
		require.Contains(t, string(recs[21].Request), `"q3"`)
		require.Equal(t, 2, b.fake.scrollsIn)
		require.Empty(t, b.fake.scrolls, "scroll cleared")
		require.Equal(t, map[string]any{"timestamp": map[string]any{"order": "desc"}}, b.fake.searches[0]["sort"].([]any)[0])
	})

	t.Run("TLSWithCAFile", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.srv.Certificate().Raw}), 0o600))
		src, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}, CACertFile: caFile})
		require.NoError(t, err)
		recs, err := src.NewestRecords(context.Background(), "w", "c", 5)
		require.NoError(t, err)
		require.Len(t, recs, 5)

		untrusted, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}})
		require.NoError(t, err)
		_, err = untrusted.NewestRecords(context.Background(), "w", "c", 5)
		require.ErrorContains(t, err, "certificate")

		insecure, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}, InsecureSkipVerify: true})
		require.NoError(t, err)
		_, err = insecure.NewestRecords(context.Background(), "w", "c", 5)
		require.NoError(t, err)
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		b.fake.failWith = http.StatusUnauthorized
		src, err := elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}})
		require.NoError(t, err)
		_, err = src.NewestRecords(context.Background(), "w", "c", 5)
		require.ErrorContains(t, err, "status 401")
		require.ErrorIs(t, err, flywheel.ErrPermanent)
		require.Empty(t, b.fake.pitsOpen)

		_, err = elasticsearch.New(elasticsearch.Config{})
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
		_, err = elasticsearch.New(elasticsearch.Config{Addresses: []string{b.srv.URL}, CACertFile: filepath.Join(t.TempDir(), "missing.pem")})
		require.Equal(t, flywheel.EINVALID, flywheel.ErrorCode(err))
	})
}
