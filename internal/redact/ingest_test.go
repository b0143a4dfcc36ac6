package redact_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/ingest"
	"github.com/flywheel-go/flywheel/internal/redact"
	"github.com/flywheel-go/flywheel/internal/store"
	"github.com/flywheel-go/flywheel/internal/store/storetest"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// corpusLines returns n distinct JSONL lines of the generated corpus; every
// tenth has an e-mail address and a card number in its user message.
func corpusLines(tb testing.TB, n int) []byte {
	tb.Helper()
	dir := testcorpus.BFCLDir(tb)
	var base []string
	for _, c := range testcorpus.Categories {
		data, err := os.ReadFile(filepath.Join(dir, c.Name+".jsonl"))
		require.NoError(tb, err)
		base = append(base, strings.Split(strings.TrimSpace(string(data)), "\n")...)
	}
	var out bytes.Buffer
	for i := range n {
		var rec map[string]any
		require.NoError(tb, json.Unmarshal([]byte(base[i%len(base)]), &rec))
		rec["workload_id"] = fmt.Sprintf("bench-%d", i/len(base))
		if i%10 == 0 {
			m := rec["request"].(map[string]any)["messages"].([]any)[0].(map[string]any)
			m["content"] = fmt.Sprintf("%s Reply to user%d@example.com; card %s.", m["content"], i, luhnCard(fmt.Sprintf("4%014d", i)))
		}
		line, err := json.Marshal(rec)
		require.NoError(tb, err)
		out.Write(line)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// TestLoadRedacts loads through ingest.Load with the default detectors and
// checks the summary's counts and that the stored records hold no card and
// the e-mail addresses (not a default detector) as they were.
func TestLoadRedacts(t *testing.T) {
	const n = 200
	lines := corpusLines(t, n)
	for _, d := range storetest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, d)
			sum, err := ingest.Load(ctx, bytes.NewReader(lines), ingest.Options{ClientID: "c", Redactor: redact.MustNew(redact.Config{})}, s, nil)
			require.NoError(t, err)
			require.Equal(t, n, sum.Loaded)
			require.Equal(t, redact.Counts{redact.Cards: n / 10}, sum.Redacted)

			recs, err := s.NewestRecords(ctx, "bench-0", "c", n)
			require.NoError(t, err)
			cards, emails := 0, 0
			for _, r := range recs {
				cards += strings.Count(string(r.Request), "<CARD_1>")
				emails += strings.Count(string(r.Request), "@example.com")
				require.NotRegexp(t, `4\d{15}`, string(r.Request))
			}
			require.Equal(t, n/10, cards)
			require.Equal(t, n/10, emails, "e-mail is opt-in")

			// Loading again: the redacted records are duplicates.
			sum, err = ingest.Load(ctx, bytes.NewReader(lines), ingest.Options{ClientID: "c", Redactor: redact.MustNew(redact.Config{})}, s, nil)
			require.NoError(t, err)
			require.Equal(t, n, sum.Duplicates)
		})
	}
}

// BenchmarkIngestRedaction reports the rate of flywheel load (ingest.Load
// of 10,000 records into a fresh database) without redaction, with the
// default detectors and with every detector, and the ratios on/off. Each
// iteration loads with the three in turn (rotating which goes first); the
// best rate of each over the iterations is reported, which keeps other
// work on a shared machine out of the comparison as far as possible.
func BenchmarkIngestRedaction(b *testing.B) {
	const n = 10000
	lines := corpusLines(b, n)
	configs := []struct {
		name string
		r    *redact.Redactor
	}{
		{"off", nil},
		{"default", redact.MustNew(redact.Config{})},
		{"all", redact.MustNew(all)},
	}
	for _, d := range storetest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			best := map[string]float64{}
			i := 0
			for b.Loop() {
				for k := range configs {
					c := configs[(i+k)%len(configs)]
					best[c.name] = max(best[c.name], loadRate(b, d, lines, n, c.r))
				}
				i++
			}
			for _, c := range configs {
				b.ReportMetric(best[c.name], c.name+"_records/s")
			}
			b.ReportMetric(best["default"]/best["off"], "ratio_default")
			b.ReportMetric(best["all"]/best["off"], "ratio_all")
		})
	}
}

func loadRate(b *testing.B, d store.Dialect, lines []byte, n int, r *redact.Redactor) float64 {
	b.Helper()
	s := storetest.Open(b, d)
	start := time.Now()
	sum, err := ingest.Load(context.Background(), bytes.NewReader(lines), ingest.Options{ClientID: "c", Redactor: r}, s, nil)
	require.NoError(b, err)
	require.Equal(b, n, sum.Loaded)
	return float64(n) / time.Since(start).Seconds()
}

// BenchmarkRecords reports the cost of redacting the corpus's records (one
// in ten seeded) with the default detectors and with every detector, and
// of parsing the same lines (ingest's reader), for comparison.
func BenchmarkRecords(b *testing.B) {
	const n = 2000
	lines := corpusLines(b, n)
	read := func() []flywheel.LogRecord {
		rd := ingest.NewReader(bytes.NewReader(lines), ingest.Options{ClientID: "c"})
		var recs []flywheel.LogRecord
		for {
			res, err := rd.Next()
			if err != nil {
				return recs
			}
			recs = append(recs, res.Record)
		}
	}
	b.Run("parse", func(b *testing.B) {
		for b.Loop() {
			require.Len(b, read(), n)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	for _, c := range []struct {
		name string
		r    *redact.Redactor
	}{{"default", redact.MustNew(redact.Config{})}, {"all", redact.MustNew(all)}} {
		b.Run(c.name, func(b *testing.B) {
			recs := read()
			orig := make([]flywheel.LogRecord, len(recs))
			copy(orig, recs)
			for b.Loop() {
				copy(recs, orig)
				c.r.Records(recs)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
