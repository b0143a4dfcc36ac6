package redact_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// readCorpus reads every record of a corpus directory (blueprint log format).
func readCorpus(t testing.TB, dir string) []flywheel.LogRecord {
	t.Helper()
	var recs []flywheel.LogRecord
	for _, c := range testcorpus.Categories {
		f, err := os.Open(filepath.Join(dir, c.Name+".jsonl"))
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		for sc.Scan() {
			var rec flywheel.LogRecord
			var line struct {
				WorkloadID string          `json:"workload_id"`
				ClientID   string          `json:"client_id"`
				Request    json.RawMessage `json:"request"`
				Response   json.RawMessage `json:"response"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
			rec.WorkloadID, rec.ClientID, rec.Request, rec.Response = line.WorkloadID, line.ClientID, line.Request, line.Response
			recs = append(recs, rec)
		}
		require.NoError(t, sc.Err())
		require.NoError(t, f.Close())
	}
	return recs
}

// pii is one seeded value per detector, each distinct per record.
func pii(i int) map[string]string {
	return map[string]string{
		redact.Secrets: fmt.Sprintf("sk-proj-%024d", i),
		redact.Cards:   luhnCard(fmt.Sprintf("4%014d", i)),
		redact.Email:   fmt.Sprintf("user%d@example.com", i),
		redact.Phone:   fmt.Sprintf("+44 20 7946 %04d", i%10000),
		redact.IBAN:    "DE89 3704 0044 0532 0130 00",
		redact.IP:      fmt.Sprintf("10.%d.%d.7", i/250%250, i%250),
	}
}

// luhnCard appends the Luhn check digit to 15 digits.
func luhnCard(d string) string {
	sum := 0
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if (len(d)-1-i)%2 == 0 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return d + string(rune('0'+(10-sum%10)%10))
}

// seed puts each kind of PII into the user's message of rec and the same
// e-mail into the first tool call's arguments; it returns how many values of
// each kind it put in.
func seed(t testing.TB, rec *flywheel.LogRecord, i int) redact.Counts {
	t.Helper()
	p := pii(i)
	var req map[string]any
	require.NoError(t, json.Unmarshal(rec.Request, &req))
	msgs := req["messages"].([]any)
	m := msgs[0].(map[string]any)
	m["content"] = fmt.Sprintf("%s My key is %s, card %s, mail %s, phone %s, IBAN %s, from %s.",
		m["content"], p[redact.Secrets], p[redact.Cards], p[redact.Email], p[redact.Phone], p[redact.IBAN], p[redact.IP])
	rec.Request, _ = json.Marshal(req)
	want := redact.Counts{redact.Secrets: 1, redact.Cards: 1, redact.Email: 1, redact.Phone: 1, redact.IBAN: 1, redact.IP: 1}

	var resp map[string]any
	require.NoError(t, json.Unmarshal(rec.Response, &resp))
	msg := resp["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)
	if calls, ok := msg["tool_calls"].([]any); ok && len(calls) > 0 {
		fn := calls[0].(map[string]any)["function"].(map[string]any)
		var args map[string]any
		require.NoError(t, json.Unmarshal([]byte(fn["arguments"].(string)), &args))
		args["contact_email"] = p[redact.Email]
		b, _ := json.Marshal(args)
		fn["arguments"] = string(b)
		rec.Response, _ = json.Marshal(resp)
		want[redact.Email]++
	}
	return want
}

// TestSeededCorpus seeds every record of the corpus with each kind of PII
// and checks each detector finds exactly what was seeded, that the tool
// call's e-mail gets the user's placeholder, and that nothing seeded is
// left.
func TestSeededCorpus(t *testing.T) {
	r := redact.MustNew(all)
	recs := readCorpus(t, testcorpus.BFCLDir(t))
	want, got := redact.Counts{}, redact.Counts{}
	for i := range recs {
		want.Add(seed(t, &recs[i], i))
		got.Add(r.Record(&recs[i]))
		all := string(recs[i].Request) + string(recs[i].Response)
		for kind, v := range pii(i) {
			require.NotContains(t, all, v, "record %d: %s left", i, kind)
		}
		if strings.Contains(string(recs[i].Response), "contact_email") {
			require.Contains(t, string(recs[i].Response), `contact_email\":\"<EMAIL_1>`, "record %d", i)
		}
	}
	t.Logf("records %d, seeded %v, redacted %v", len(recs), want, got)
	require.Equal(t, want, got)
}

// TestFalsePositives redacts the unseeded corpus (and FLYWHEEL_BFCL_DIR's
// when set) with every detector on: secrets and cards find nothing there.
func TestFalsePositives(t *testing.T) {
	r := redact.MustNew(all)
	for _, c := range testcorpus.Dirs(t) {
		t.Run(c.Name, func(t *testing.T) {
			recs := readCorpus(t, c.Dir)
			counts := redact.Counts{}
			strs := 0
			for i := range recs {
				strs += bytes.Count(recs[i].Request, []byte(`"`))/2 + bytes.Count(recs[i].Response, []byte(`"`))/2
				counts.Add(r.Record(&recs[i]))
			}
			t.Logf("%s: %d records (~%d strings): findings %v", c.Name, len(recs), strs, counts)
			require.Zero(t, counts[redact.Secrets], "secrets")
			require.Zero(t, counts[redact.Cards], "cards")
			if c.Name == "generated" {
				require.Zero(t, counts.Total(), "the generated corpus has no PII")
			}
		})
	}
}
