package testcorpus_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flywheel-go/flywheel/internal/testcorpus"
)

// TestGenerateShape checks each category's record count, workload, answer
// ids, call counts per shape and the uniqueness of questions.
func TestGenerateShape(t *testing.T) {
	t.Parallel()
	for i, c := range testcorpus.Categories {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			logs, answers := testcorpus.Generate(c, uint64(i+1))
			again, _ := testcorpus.Generate(c, uint64(i+1))
			require.Equal(t, logs, again, "deterministic")

			var ids []string
			sc := bufio.NewScanner(bytes.NewReader(answers))
			for sc.Scan() {
				var a struct {
					ID          string                      `json:"id"`
					GroundTruth []map[string]map[string]any `json:"ground_truth"`
				}
				require.NoError(t, json.Unmarshal(sc.Bytes(), &a))
				ids = append(ids, a.ID)
			}
			require.Len(t, ids, c.Records)

			questions := map[string]bool{}
			sc = bufio.NewScanner(bytes.NewReader(logs))
			sc.Buffer(nil, 1<<20)
			n := 0
			for sc.Scan() {
				var rec struct {
					WorkloadID string `json:"workload_id"`
					ClientID   string `json:"client_id"`
					Request    struct {
						Messages []struct{ Content string } `json:"messages"`
						Tools    []json.RawMessage          `json:"tools"`
					} `json:"request"`
					Response struct {
						ID      string `json:"id"`
						Choices []struct {
							Message struct {
								ToolCalls []struct {
									Function struct{ Name, Arguments string }
								} `json:"tool_calls"`
							}
						}
					} `json:"response"`
				}
				require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
				require.Equal(t, c.WorkloadID, rec.WorkloadID)
				require.Equal(t, testcorpus.ClientID, rec.ClientID)
				require.Equal(t, "chatcmpl-"+ids[n], rec.Response.ID)
				q := rec.Request.Messages[0].Content
				require.False(t, questions[q], "question %q twice", q)
				questions[q] = true
				calls := rec.Response.Choices[0].Message.ToolCalls
				switch c.Name {
				case "simple":
					require.Len(t, rec.Request.Tools, 1)
					require.Len(t, calls, 1)
				case "multiple":
					require.Greater(t, len(rec.Request.Tools), 1)
					require.Len(t, calls, 1)
				case "parallel":
					require.Len(t, rec.Request.Tools, 1)
					require.Greater(t, len(calls), 1)
				default:
					require.Greater(t, len(rec.Request.Tools), 1)
					require.Greater(t, len(calls), 1)
				}
				for _, cl := range calls {
					require.NotContains(t, cl.Function.Name, ".", "logged names use underscores")
					var args map[string]any
					require.NoError(t, json.Unmarshal([]byte(cl.Function.Arguments), &args))
					require.NotEmpty(t, args)
				}
				n++
			}
			require.NoError(t, sc.Err())
			require.Equal(t, c.Records, n)
		})
	}
}

func TestDirs(t *testing.T) {
	t.Setenv(testcorpus.EnvBFCLDir, "")
	dirs := testcorpus.Dirs(t)
	require.Len(t, dirs, 1)
	require.Equal(t, "generated", dirs[0].Name)
	t.Setenv(testcorpus.EnvBFCLDir, "/elsewhere")
	dirs = testcorpus.Dirs(t)
	require.Len(t, dirs, 2)
	require.Equal(t, "/elsewhere", dirs[1].Dir)
	files, err := filepath.Glob(filepath.Join(dirs[0].Dir, "*.jsonl"))
	require.NoError(t, err)
	require.Len(t, files, 2*len(testcorpus.Categories))
}
