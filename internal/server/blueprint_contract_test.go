package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/require"
)

// This file is the project's own description of the blueprint's REST
// contract for /api/jobs (the operations, their answers, and each answer
// type's fields, types and required fields), written from the blueprint's
// documentation. The conformance test checks our answers against it. When
// FLYWHEEL_BLUEPRINT_DIR names a folder holding the blueprint's
// openapi.json, the answers are checked against that document too, and this
// description is compared with it.

// envBlueprintDir names the folder of the blueprint's reference files.
const envBlueprintDir = "FLYWHEEL_BLUEPRINT_DIR"

// blueprintOperations are "METHOD path status Type": every operation of the
// blueprint's API and the type of each answer it documents.
var blueprintOperations = []string{
	"GET /api/jobs 200 JobsListResponse",
	"POST /api/jobs 200 JobResponse",
	"POST /api/jobs 422 HTTPValidationError",
	"GET /api/jobs/{job_id} 200 JobDetailResponse",
	"GET /api/jobs/{job_id} 422 HTTPValidationError",
	"DELETE /api/jobs/{job_id} 200 JobDeleteResponse",
	"DELETE /api/jobs/{job_id} 422 HTTPValidationError",
	"POST /api/jobs/{job_id}/cancel 200 JobCancelResponse",
	"POST /api/jobs/{job_id}/cancel 422 HTTPValidationError",
}

// blueprintTypes describes each type: "field type" for a required field,
// "field? type" for an optional one, or a single "= type" for a type that
// is a plain value. Types: string, integer, number, boolean, date-time (an
// RFC 3339 string), []T (a list of T, where T runs to the end: []A|B is a
// list of A and B), map[T] (an object of T values),
// enum(a,b,…) (one of those strings), A|B (either), null, and the
// capitalised names of this table.
var blueprintTypes = map[string][]string{
	"JobRequest":       {"workload_id string", "client_id string", "data_split_config? DataSplitConfig|null"},
	"DataSplitConfig":  {"eval_size? integer", "val_ratio? number", "min_total_records? integer", "random_seed? integer|null", "limit? integer", "parse_function_arguments? boolean"},
	"JobResponse":      {"id string", "status enum(queued,running,completed,failed)", "message string"},
	"JobsListResponse": {"jobs []JobListItem"},
	"JobListItem": {"id string", "workload_id string", "client_id? string|null", "status string", "started_at date-time",
		"finished_at? date-time|null", "datasets? []Dataset", "error? string|null"},
	"Dataset": {"name string", "num_records integer", "nmp_uri? string|null"},
	"JobDetailResponse": {"id string", "workload_id string", "client_id string", "status string", "started_at date-time",
		"finished_at? date-time|null", "num_records integer", "llm_judge? LLMJudgeResponse|null", "nims? []NIMResponse",
		"datasets? []Dataset", "error? string|null"},
	"LLMJudgeResponse": {"model_name string", "type string", "deployment_status DeploymentStatus", "error? string|null"},
	"DeploymentStatus": {"= enum(created,pending,running,cancelled,cancelling,failed,completed,ready,unknown)"},
	"NIMRunStatus":     {"= enum(pending,deploying-nim,running-evals,cancelled,completed,failed)"},
	"NIMResponse": {"model_name string", "status NIMRunStatus", "deployment_status DeploymentStatus", "runtime_seconds number",
		"evaluations? []Evaluation", "customizations? []Customization", "error? string|null"},
	"Evaluation": {"eval_type string", "scores? map[number]", "started_at date-time", "finished_at? date-time|null",
		"runtime_seconds number", "progress number", "nmp_uri? string|null", "mlflow_uri? string|null", "error? string|null"},
	"Customization": {"started_at date-time", "finished_at? date-time|null", "runtime_seconds number", "progress number",
		"epochs_completed integer", "steps_completed integer", "nmp_uri? string|null", "customized_model? string|null", "error? string|null"},
	"JobCancelResponse":   {"id string", "message string"},
	"JobDeleteResponse":   {"id string", "message string"},
	"HTTPValidationError": {"detail? []ValidationError"},
	"ValidationError":     {"loc []string|integer", "msg string", "type string"},
}

// blueprintContractDoc turns the description into an OpenAPI-shaped
// document the schema validator reads.
func blueprintContractDoc(t *testing.T) map[string]any {
	t.Helper()
	schemas := map[string]any{}
	for name, fields := range blueprintTypes {
		if len(fields) == 1 && strings.HasPrefix(fields[0], "= ") {
			schemas[name] = contractType(t, strings.TrimPrefix(fields[0], "= "))
			continue
		}
		props := map[string]any{}
		var required []any
		for _, f := range fields {
			field, typ, ok := strings.Cut(f, " ")
			require.True(t, ok, "%s: %q", name, f)
			if optional := strings.HasSuffix(field, "?"); optional {
				field = strings.TrimSuffix(field, "?")
			} else {
				required = append(required, field)
			}
			props[field] = contractType(t, typ)
		}
		s := map[string]any{"type": "object", "properties": props}
		if required != nil {
			s["required"] = required
		}
		schemas[name] = s
	}
	paths := map[string]any{}
	for _, op := range blueprintOperations {
		parts := strings.Fields(op)
		require.Len(t, parts, 4, op)
		method, path, status, typ := strings.ToLower(parts[0]), parts[1], parts[2], parts[3]
		require.Contains(t, schemas, typ, op)
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		o, _ := item[method].(map[string]any)
		if o == nil {
			o = map[string]any{"responses": map[string]any{}}
			item[method] = o
		}
		o["responses"].(map[string]any)[status] = map[string]any{"content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + typ}}}}
	}
	return map[string]any{"paths": paths, "components": map[string]any{"schemas": schemas}}
}

// contractType is the JSON schema of one type of the description.
func contractType(t *testing.T, typ string) map[string]any {
	t.Helper()
	if strings.HasPrefix(typ, "[]") {
		return map[string]any{"type": "array", "items": contractType(t, strings.TrimPrefix(typ, "[]"))}
	}
	if alts := splitTop(typ); len(alts) > 1 {
		var anyOf []any
		for _, a := range alts {
			anyOf = append(anyOf, contractType(t, a))
		}
		return map[string]any{"anyOf": anyOf}
	}
	switch {
	case strings.HasPrefix(typ, "map[") && strings.HasSuffix(typ, "]"):
		return map[string]any{"type": "object", "additionalProperties": contractType(t, typ[4:len(typ)-1])}
	case strings.HasPrefix(typ, "enum(") && strings.HasSuffix(typ, ")"):
		var enum []any
		for _, v := range strings.Split(typ[5:len(typ)-1], ",") {
			enum = append(enum, v)
		}
		return map[string]any{"type": "string", "enum": enum}
	case typ == "date-time":
		return map[string]any{"type": "string", "format": "date-time"}
	case typ == "string", typ == "integer", typ == "number", typ == "boolean", typ == "null":
		return map[string]any{"type": typ}
	case typ != "" && unicode.IsUpper(rune(typ[0])):
		require.Contains(t, blueprintTypes, typ)
		return map[string]any{"$ref": "#/components/schemas/" + typ}
	}
	t.Fatalf("unknown type %q in the blueprint contract", typ)
	return nil
}

// splitTop splits a type at the | that are not inside parentheses.
func splitTop(typ string) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range typ {
		switch r {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
		case '|':
			if depth == 0 {
				out = append(out, typ[start:i])
				start = i + 1
			}
		}
	}
	return append(out, typ[start:])
}

// renderSchema writes a JSON schema of doc in the description's notation.
func renderSchema(s any) string {
	m, _ := s.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		return ref[strings.LastIndex(ref, "/")+1:]
	}
	if anyOf, ok := m["anyOf"].([]any); ok {
		parts := make([]string, len(anyOf))
		for i, a := range anyOf {
			parts[i] = renderSchema(a)
		}
		return strings.Join(parts, "|")
	}
	if enum, ok := m["enum"].([]any); ok {
		parts := make([]string, len(enum))
		for i, e := range enum {
			parts[i] = fmt.Sprint(e)
		}
		return "enum(" + strings.Join(parts, ",") + ")"
	}
	switch m["type"] {
	case "array":
		return "[]" + renderSchema(m["items"])
	case "object":
		if ap, ok := m["additionalProperties"].(map[string]any); ok {
			return "map[" + renderSchema(ap) + "]"
		}
	case "string":
		if m["format"] == "date-time" {
			return "date-time"
		}
	}
	return fmt.Sprint(m["type"])
}

// renderTypes writes every component schema of doc as description lines,
// fields sorted.
func renderTypes(doc map[string]any) map[string][]string {
	out := map[string][]string{}
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, s := range schemas {
		m := s.(map[string]any)
		props, ok := m["properties"].(map[string]any)
		if !ok {
			out[name] = []string{"= " + renderSchema(m)}
			continue
		}
		required := map[string]bool{}
		if req, ok := m["required"].([]any); ok {
			for _, r := range req {
				required[fmt.Sprint(r)] = true
			}
		}
		var lines []string
		for field, p := range props {
			if !required[field] {
				field += "?"
			}
			lines = append(lines, field+" "+renderSchema(p))
		}
		sort.Strings(lines)
		out[name] = lines
	}
	return out
}

// renderOperations writes every operation's answers of doc as description
// lines, sorted.
func renderOperations(doc map[string]any) []string {
	var out []string
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			for status, resp := range op.(map[string]any)["responses"].(map[string]any) {
				content, _ := resp.(map[string]any)["content"].(map[string]any)
				media, _ := content["application/json"].(map[string]any)
				out = append(out, fmt.Sprintf("%s %s %s %s", strings.ToUpper(method), path, status, renderSchema(media["schema"])))
			}
		}
	}
	sort.Strings(out)
	return out
}

// blueprintReferenceDoc returns the blueprint's own openapi.json from the
// folder FLYWHEEL_BLUEPRINT_DIR names, or nil when it is not set.
func blueprintReferenceDoc(t *testing.T) map[string]any {
	t.Helper()
	dir := os.Getenv(envBlueprintDir)
	if dir == "" {
		return nil
	}
	return loadJSONDoc(t, filepath.Join(dir, "openapi.json"))
}

// TestBlueprintContractDescription checks that the description reads back
// as itself, and, with FLYWHEEL_BLUEPRINT_DIR, that it says exactly what
// the blueprint's own document says.
func TestBlueprintContractDescription(t *testing.T) {
	t.Parallel()
	ours := blueprintContractDoc(t)
	want := map[string][]string{}
	for name, fields := range blueprintTypes {
		sorted := append([]string(nil), fields...)
		sort.Strings(sorted)
		want[name] = sorted
	}
	require.Equal(t, want, renderTypes(ours))
	wantOps := append([]string(nil), blueprintOperations...)
	sort.Strings(wantOps)
	require.Equal(t, wantOps, renderOperations(ours))

	t.Run("MatchesBlueprintDocument", func(t *testing.T) {
		t.Parallel()
		theirs := blueprintReferenceDoc(t)
		if theirs == nil {
			t.Skip(envBlueprintDir + " is not set: no blueprint openapi.json to compare the description with")
		}
		require.Equal(t, renderTypes(theirs), renderTypes(ours))
		require.Equal(t, renderOperations(theirs), renderOperations(ours))
	})
}
