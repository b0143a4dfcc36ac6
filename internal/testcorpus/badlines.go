package testcorpus

import (
	"fmt"
	"strings"
)

// BadLines returns a JSONL input of n lines in the blueprint's log format
// in which line nul holds a NUL escape in a message, line badUTF8 raw
// invalid UTF-8 in a message and line long a 100,000-byte workload id (0
// leaves one out); every other line is good and distinct. No database can
// store the three bad lines, so ingest tests use it to show that they are
// rejected with their line numbers and the rest kept.
func BadLines(n, nul, badUTF8, long int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		content, workload := fmt.Sprintf("question %d", i), "w"
		switch i {
		case nul:
			content = `before\u0000after`
		case badUTF8:
			content = "bad \xff\xfe bytes"
		case long:
			workload = strings.Repeat("w", 100_000)
		}
		fmt.Fprintf(&b, `{"workload_id":"%s","client_id":"c","timestamp":1746000037,"request":{"model":"m","messages":[{"role":"user","content":"%s"}]},"response":{"choices":[{"message":{"role":"assistant","content":"ok %d"}}]}}`+"\n",
			workload, content, i)
	}
	return b.String()
}
