package server_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// This file is a small validator for the subset of JSON Schema that the
// blueprint's OpenAPI document and ours use: $ref, anyOf, type, enum,
// properties, required, additionalProperties, items, format date-time,
// minimum, maximum, exclusiveMinimum, exclusiveMaximum and minLength.
// Other keywords (title, description, examples, default) carry no rules.

// schemaDoc is an OpenAPI document with validation settings.
type schemaDoc struct {
	root map[string]any
	// allPresent makes every declared property required: a response that
	// renames or drops an optional field fails.
	allPresent bool
	// closed rejects properties an object schema does not declare (unless
	// it has additionalProperties): a response with an undocumented field fails.
	closed bool
}

func loadJSONDoc(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

func loadYAMLDoc(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(b, &doc))
	// Round-trip through JSON so numbers and maps have JSON's Go types.
	j, err := json.Marshal(doc)
	require.NoError(t, err)
	doc = nil
	require.NoError(t, json.Unmarshal(j, &doc))
	return doc
}

// pointer resolves a local JSON pointer such as "#/components/schemas/Job".
func (d *schemaDoc) pointer(ref string) (any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	var cur any = d.root
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not in an object", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, part)
		}
	}
	return cur, nil
}

// responseSchema returns the JSON schema of an operation's answer.
func (d *schemaDoc) responseSchema(path, method string, status int) (any, error) {
	op, err := d.pointer("#/paths/" + strings.ReplaceAll(path, "/", "~1") + "/" + strings.ToLower(method))
	if err != nil {
		return nil, err
	}
	resps, _ := op.(map[string]any)["responses"].(map[string]any)
	resp, ok := resps[fmt.Sprint(status)]
	if !ok {
		return nil, fmt.Errorf("%s %s has no %d response", method, path, status)
	}
	if ref, ok := resp.(map[string]any)["$ref"].(string); ok {
		if resp, err = d.pointer(ref); err != nil {
			return nil, err
		}
	}
	content, _ := resp.(map[string]any)["content"].(map[string]any)
	media, ok := content["application/json"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s %s %d has no application/json content", method, path, status)
	}
	return media["schema"], nil
}

// validate returns every way v breaks schema; at names v's location.
func (d *schemaDoc) validate(schema, v any, at string) []string {
	s, ok := schema.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: schema is not an object", at)}
	}
	if ref, ok := s["$ref"].(string); ok {
		target, err := d.pointer(ref)
		if err != nil {
			return []string{fmt.Sprintf("%s: %v", at, err)}
		}
		return d.validate(target, v, at)
	}
	if anyOf, ok := s["anyOf"].([]any); ok {
		var all []string
		for _, alt := range anyOf {
			errs := d.validate(alt, v, at)
			if len(errs) == 0 {
				return nil
			}
			all = append(all, errs...)
		}
		return []string{fmt.Sprintf("%s: matches no anyOf alternative (%s)", at, strings.Join(all, "; "))}
	}
	var errs []string
	if typ, ok := s["type"]; ok {
		var types []string
		switch x := typ.(type) {
		case string:
			types = []string{x}
		case []any:
			for _, t := range x {
				types = append(types, fmt.Sprint(t))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
			return []string{fmt.Sprintf("%s: got %s, want type %s", at, describe(v), strings.Join(types, "|"))}
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	switch x := v.(type) {
	case string:
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, x); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %q is not an RFC 3339 date-time", at, x))
			}
		}
		if n, ok := s["minLength"].(float64); ok && float64(len([]rune(x))) < n {
			errs = append(errs, fmt.Sprintf("%s: %q is shorter than %v", at, x, n))
		}
	case float64:
		if n, ok := s["minimum"].(float64); ok && x < n {
			errs = append(errs, fmt.Sprintf("%s: %v < minimum %v", at, x, n))
		}
		if n, ok := s["maximum"].(float64); ok && x > n {
			errs = append(errs, fmt.Sprintf("%s: %v > maximum %v", at, x, n))
		}
		if n, ok := s["exclusiveMinimum"].(float64); ok && x <= n {
			errs = append(errs, fmt.Sprintf("%s: %v <= exclusiveMinimum %v", at, x, n))
		}
		if n, ok := s["exclusiveMaximum"].(float64); ok && x >= n {
			errs = append(errs, fmt.Sprintf("%s: %v >= exclusiveMaximum %v", at, x, n))
		}
	case []any:
		if items, ok := s["items"]; ok {
			for i, item := range x {
				errs = append(errs, d.validate(items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case map[string]any:
		errs = append(errs, d.validateObject(s, x, at)...)
	}
	return errs
}

func (d *schemaDoc) validateObject(s, obj map[string]any, at string) []string {
	var errs []string
	props, _ := s["properties"].(map[string]any)
	required := map[string]bool{}
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			required[fmt.Sprint(r)] = true
		}
	}
	if d.allPresent {
		for name := range props {
			required[name] = true
		}
	}
	for _, name := range sortedKeys(required) {
		if _, ok := obj[name]; !ok {
			errs = append(errs, fmt.Sprintf("%s: missing field %q", at, name))
		}
	}
	for _, name := range sortedKeys(obj) {
		val := obj[name]
		if p, ok := props[name]; ok {
			errs = append(errs, d.validate(p, val, at+"."+name)...)
			continue
		}
		switch ap := s["additionalProperties"].(type) {
		case map[string]any:
			errs = append(errs, d.validate(ap, val, at+"."+name)...)
		case bool:
			if !ap {
				errs = append(errs, fmt.Sprintf("%s: undeclared field %q", at, name))
			}
		case nil:
			if d.closed && props != nil {
				errs = append(errs, fmt.Sprintf("%s: undocumented field %q", at, name))
			}
		}
	}
	return errs
}

func hasType(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "number":
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "array":
		_, ok := v.([]any)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestSchemaValidator(t *testing.T) {
	t.Parallel()
	doc := &schemaDoc{allPresent: true, root: map[string]any{"components": map[string]any{"schemas": map[string]any{
		"Thing": map[string]any{
			"type":     "object",
			"required": []any{"id"},
			"properties": map[string]any{
				"id":    map[string]any{"type": "string"},
				"n":     map[string]any{"type": "integer", "minimum": 0.0},
				"at":    map[string]any{"anyOf": []any{map[string]any{"type": "string", "format": "date-time"}, map[string]any{"type": "null"}}},
				"kind":  map[string]any{"type": "string", "enum": []any{"a", "b"}},
				"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
				"score": map[string]any{"type": "object", "additionalProperties": map[string]any{"type": "number"}},
			},
		},
	}}}}
	ref := map[string]any{"$ref": "#/components/schemas/Thing"}
	good := func() map[string]any {
		return map[string]any{"id": "x", "n": 1.0, "at": nil, "kind": "a", "tags": []any{"t"}, "score": map[string]any{"f1": 0.5}}
	}
	require.Empty(t, doc.validate(ref, good(), "$"))

	tests := []struct {
		name   string
		mutate func(m map[string]any)
		want   string
	}{
		{"Renamed", func(m map[string]any) { m["ident"] = m["id"]; delete(m, "id") }, `missing field "id"`},
		{"DroppedOptional", func(m map[string]any) { delete(m, "at") }, `missing field "at"`},
		{"Retyped", func(m map[string]any) { m["n"] = "1" }, "$.n: got a string, want type integer"},
		{"Fraction", func(m map[string]any) { m["n"] = 1.5 }, "want type integer"},
		{"Negative", func(m map[string]any) { m["n"] = -1.0 }, "< minimum"},
		{"BadTime", func(m map[string]any) { m["at"] = "yesterday" }, "matches no anyOf"},
		{"Enum", func(m map[string]any) { m["kind"] = "c" }, "is not one of"},
		{"ItemType", func(m map[string]any) { m["tags"] = []any{1.0} }, "$.tags[0]"},
		{"AdditionalProperties", func(m map[string]any) { m["score"] = map[string]any{"f1": "high"} }, "$.score.f1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := good()
			tt.mutate(v)
			errs := doc.validate(ref, v, "$")
			require.NotEmpty(t, errs)
			require.Contains(t, strings.Join(errs, "\n"), tt.want)
		})
	}

	closed := &schemaDoc{closed: true, root: doc.root}
	v := good()
	v["extra"] = true
	require.Contains(t, strings.Join(closed.validate(ref, v, "$"), "\n"), `undocumented field "extra"`)
}
