package redact_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
	"github.com/flywheel-go/flywheel/internal/redact"
)

var all = redact.Config{Detectors: redact.Builtins}

func TestText(t *testing.T) {
	r := redact.MustNew(all)
	tests := []struct {
		name string
		in   string
		want string
		kind string // detector expected to fire ("" none)
	}{
		{"openai key", "key sk-proj-AbCdEf0123456789AbCdEf0123 ok", "key <SECRET_1> ok", redact.Secrets},
		{"anthropic key", "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "<SECRET_1>", redact.Secrets},
		{"aws", "id=AKIAIOSFODNN7EXAMPLE.", "id=<SECRET_1>.", redact.Secrets},
		{"github classic", "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "<SECRET_1>", redact.Secrets},
		{"github fine-grained", "github_pat_11ABCDEFG0123456789_abcdefghijklmnop", "<SECRET_1>", redact.Secrets},
		{"google", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "<SECRET_1>", redact.Secrets},
		{"slack", "xoxb-1234567890-abcdefghij", "<SECRET_1>", redact.Secrets},
		{"stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "<SECRET_1>", redact.Secrets},
		{"nvidia", "nvapi-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", "<SECRET_1>", redact.Secrets},
		{"bearer", "Authorization: Bearer abcdef0123456789abcdef", "Authorization: Bearer <SECRET_1>", redact.Secrets},
		{"jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NSJ9.SflKxwRJSMeKKF2QT4fwpM", "<SECRET_1>", redact.Secrets},
		{"pem", "x -----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- y", "x <SECRET_1> y", redact.Secrets},
		{"url password", "postgres://app:hunter2@db:5432/x", "postgres://app:<SECRET_1>@db:5432/x", redact.Secrets},
		{"visa with spaces", "card 4111 1111 1111 1111 thanks", "card <CARD_1> thanks", redact.Cards},
		{"mastercard dashes", "5555-5555-5555-4444", "<CARD_1>", redact.Cards},
		{"amex", "378282246310005", "<CARD_1>", redact.Cards},
		{"luhn fails", "4111 1111 1111 1112", "4111 1111 1111 1112", ""},
		{"mixed separators", "4111 1111-1111 1111", "4111 1111-1111 1111", ""},
		{"decimal digits", "0.4111111111111111", "0.4111111111111111", ""},
		{"iban", "IBAN DE89 3704 0044 0532 0130 00 please", "IBAN <IBAN_1> please", redact.IBAN},
		{"iban compact", "GB82WEST12345698765432", "<IBAN_1>", redact.IBAN},
		{"iban bad checksum", "GB83WEST12345698765432", "GB83WEST12345698765432", ""},
		{"email", "write to jane.doe+x@example.co.uk now", "write to <EMAIL_1> now", redact.Email},
		{"phone intl", "call +1 415-555-2671", "call <PHONE_1>", redact.Phone},
		{"phone us", "call (415) 555-2671 or 415.555.2672", "call <PHONE_1> or <PHONE_2>", redact.Phone},
		{"ipv4", "from 192.168.10.4, not 1.2.3.4.5", "from <IP_1>, not 1.2.3.4.5", redact.IP},
		{"ipv6", "host 2001:db8::8a2e:370:7334 up", "host <IP_1> up", redact.IP},
		{"not an ip", "at 12:30:45 in std::vector, v1.2.3", "at 12:30:45 in std::vector, v1.2.3", ""},
		{"version", "version 10.0.19045.1", "version 10.0.19045.1", ""},
		{"plain numbers", "base of 10 units and height 1234567890123", "base of 10 units and height 1234567890123", ""},
		{"same value same placeholder", "a@b.io, c@d.io, a@b.io", "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>", redact.Email},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, counts := r.Text(tt.in)
			require.Equal(t, tt.want, got)
			if tt.kind == "" {
				require.Zero(t, counts.Total(), "counts %v", counts)
			} else {
				require.Positive(t, counts[tt.kind], "counts %v", counts)
			}
		})
	}
}

func TestDefaultsAndOptIn(t *testing.T) {
	r := redact.MustNew(redact.Config{})
	require.Equal(t, redact.DefaultDetectors, r.Detectors())
	got, counts := r.Text("mail a@b.io card 4111111111111111 key sk-abcdefghijklmnopqrstuvwx ip 10.0.0.1")
	require.Equal(t, "mail a@b.io card <CARD_1> key <SECRET_1> ip 10.0.0.1", got)
	require.Equal(t, redact.Counts{redact.Cards: 1, redact.Secrets: 1}, counts)

	off := redact.MustNew(redact.Config{Disabled: true})
	require.False(t, off.Enabled())
	rec := flywheel.LogRecord{Request: json.RawMessage(`{"a":"4111111111111111"}`)}
	require.Empty(t, off.Record(&rec))
	require.JSONEq(t, `{"a":"4111111111111111"}`, string(rec.Request))
}

func TestCustom(t *testing.T) {
	r, err := redact.New(redact.Config{Detectors: []string{redact.None}, Custom: []redact.Custom{
		{Name: "employee-id", Pattern: `\bEMP-\d{6}\b`},
		{Name: "order", Pattern: `order #(\d+)`},
	}})
	require.NoError(t, err)
	got, counts := r.Text("EMP-123456 asked about order #991 and EMP-123456")
	require.Equal(t, "<EMPLOYEE_ID_1> asked about order #<ORDER_1> and <EMPLOYEE_ID_1>", got)
	require.Equal(t, redact.Counts{"employee-id": 2, "order": 1}, counts)
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  redact.Config
		want string
	}{
		{"unknown detector", redact.Config{Detectors: []string{"ssn"}}, `detector "ssn": unknown`},
		{"bad pattern", redact.Config{Custom: []redact.Custom{{Name: "x", Pattern: "("}}}, "custom[0] (x).pattern"},
		{"empty match", redact.Config{Custom: []redact.Custom{{Name: "x", Pattern: "a*"}}}, "matches the empty string"},
		{"no name", redact.Config{Custom: []redact.Custom{{Pattern: "a"}}}, "custom[0].name: empty"},
		{"clash", redact.Config{Custom: []redact.Custom{{Name: "email", Pattern: "a"}}}, "already a detector"},
		{"too many", redact.Config{Custom: make([]redact.Custom, 63)}, "at most 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := redact.New(tt.cfg)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestRecordConsistentAcrossToolArguments(t *testing.T) {
	r := redact.MustNew(all)
	rec := flywheel.LogRecord{
		WorkloadID: "w", ClientID: "c",
		Request: json.RawMessage(`{"messages":[{"role":"user","content":"Email jane@example.com and bob@example.org the report; my card is 4111-1111-1111-1111"}],` +
			`"tools":[{"type":"function","function":{"name":"send_email","parameters":{"type":"object","properties":{"to":{"type":"string"}}}}}]}`),
		Response: json.RawMessage(`{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":` +
			`{"name":"send_email","arguments":"{\"to\": [\"bob@example.org\", \"jane@example.com\"], \"card\": \"4111-1111-1111-1111\", \"note\": \"say \\\"hi\\\"\"}"}}]}}]}`),
	}
	rec.ContentHash = rec.Hash()
	before := rec.ContentHash
	counts := r.Record(&rec)
	require.Equal(t, redact.Counts{redact.Email: 4, redact.Cards: 2}, counts)

	var req struct {
		Messages []struct{ Content string } `json:"messages"`
	}
	require.NoError(t, json.Unmarshal(rec.Request, &req))
	require.Equal(t, "Email <EMAIL_1> and <EMAIL_2> the report; my card is <CARD_1>", req.Messages[0].Content)

	var resp struct {
		Choices []struct {
			Message struct {
				ToolCalls []struct {
					Function struct{ Arguments string } `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	require.NoError(t, json.Unmarshal(rec.Response, &resp))
	var args map[string]any
	require.NoError(t, json.Unmarshal([]byte(resp.Choices[0].Message.ToolCalls[0].Function.Arguments), &args), "arguments stay JSON")
	require.Equal(t, []any{"<EMAIL_2>", "<EMAIL_1>"}, args["to"])
	require.Equal(t, "<CARD_1>", args["card"])
	require.Equal(t, `say "hi"`, args["note"])
	require.NotContains(t, string(rec.Request)+string(rec.Response), "example.com")
	require.NotEqual(t, before, rec.ContentHash, "the content hash follows the redacted content")

	// Redacting again changes nothing, and the same input redacts the same
	// way (so a record loaded twice is still a duplicate).
	again := rec
	require.Zero(t, r.Record(&again).Total())
	require.Equal(t, string(rec.Response), string(again.Response))
}

func TestRecordKeysAndBadJSON(t *testing.T) {
	r := redact.MustNew(all)
	rec := flywheel.LogRecord{Request: json.RawMessage(`{"a@b.io": "a@b.io"}`), Response: json.RawMessage(`{"x": "unterminated`)}
	counts := r.Record(&rec)
	require.Equal(t, 1, counts[redact.Email])
	require.Equal(t, `{"a@b.io": "<EMAIL_1>"}`, string(rec.Request), "keys and layout are kept")
	require.Equal(t, `{"x": "unterminated`, string(rec.Response))
}

func TestCountsAdd(t *testing.T) {
	c := redact.Counts{"a": 1}
	c.Add(redact.Counts{"a": 2, "b": 3})
	require.Equal(t, redact.Counts{"a": 3, "b": 3}, c)
	require.Equal(t, 6, c.Total())
	require.True(t, strings.HasPrefix(redact.Builtins[0], "secrets"))
}
