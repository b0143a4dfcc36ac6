package flywheel_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

func TestHashIgnoresWhitespaceAndHashCompactAgrees(t *testing.T) {
	t.Parallel()
	a := flywheel.LogRecord{WorkloadID: "w", ClientID: "c", Request: json.RawMessage(`{"a":1,"b":[1,2]}`), Response: json.RawMessage(`{"x":"y"}`)}
	b := a
	b.Request = json.RawMessage("{ \"a\": 1,\n \"b\": [1, 2] }")
	require.Equal(t, a.Hash(), b.Hash())
	require.Equal(t, a.Hash(), a.HashCompact())
	c := a
	c.ClientID = "other"
	require.NotEqual(t, a.Hash(), c.Hash())
}
