package eval

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitObject(t *testing.T) {
	t.Parallel()

	inputs := []string{
		`{}`,
		` { "a" : 1 , "b":[1,{"c":"]}"}], "d\"q":"x\\"}  `,
		`{"s":"brace } and [ inside","n":-1.5e3,"t":true,"z":null,"o":{"p":{"q":[[]]}}}`,
		"{\n\t\"u\": \"\\u00e9\\n\",\r\n\"k\\u0041\": {}\n}",
	}
	for _, in := range inputs {
		ms, err := splitObject([]byte(in))
		require.NoError(t, err, in)
		var want map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(in), &want))
		require.Len(t, ms, len(want), in)
		for _, m := range ms {
			require.Contains(t, want, m.key, in)
			require.JSONEq(t, string(want[m.key]), string(m.val), in)
		}
	}
	for _, bad := range []string{`[1]`, `"x"`, ``, `{"a"`} {
		_, err := splitObject([]byte(bad))
		require.Error(t, err, bad)
	}
}

func FuzzSplitObject(f *testing.F) {
	f.Add(`{"a":1,"b":[{"c":"}"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(in), &want) != nil {
			return
		}
		ms, err := splitObject([]byte(in))
		require.NoError(t, err)
		got := map[string]json.RawMessage{}
		for _, m := range ms {
			got[m.key] = m.val
		}
		require.Len(t, got, len(want))
		for k, v := range want {
			require.JSONEq(t, string(v), string(got[k]))
		}
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add(`{"a":[1,2.50,{"b":null}],"c":"\u00e9\n","d":true,"e":-0}`)
	f.Add(` [ "x" , {} , [ ] ] `)
	f.Fuzz(func(t *testing.T, in string) {
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		var want any
		wantErr := dec.Decode(&want)
		if wantErr == nil && dec.More() {
			wantErr = errors.New("trailing data")
		}
		if wantErr == nil {
			var tail any
			if dec.Decode(&tail) != io.EOF {
				wantErr = errors.New("trailing data")
			}
		}
		got, err := decodeJSON([]byte(in))
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want, got)
	})
}
