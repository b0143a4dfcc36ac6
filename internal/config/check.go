package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flywheel-go/flywheel/internal/flywheel"
)

// This file checks a YAML document against the Config type before it is
// decoded, so that every unknown key and every wrongly typed value is
// reported with its path (yaml.v3 alone stops at the first unknown key and
// silently truncates 1.5 into an int).

func typeOfConfig() reflect.Type { return reflect.TypeFor[Config]() }

// check walks n as a value of type t at path, appending a *FieldError to
// errs for each problem.
func check(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	fail := func(format string, args ...any) {
		*errs = append(*errs, &FieldError{Field: path, Line: n.Line, Err: fmt.Errorf(format, args...)})
	}
	if n.Tag == "!!null" {
		switch t.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Struct:
			return // nil, or (for a section) nothing to change
		default:
			fail("must not be null; want %s", describe(t))
			return
		}
	}
	if t == reflect.TypeFor[time.Duration]() {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
			fail("want %s, got %s", describe(t), got(n))
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			fail("want %s, got %q", describe(t), n.Value)
		}
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		check(n, t.Elem(), path, errs)
	case reflect.Interface:
		// any value is fine
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			fail("want a mapping of keys, got %s", got(n))
			return
		}
		checkStruct(n, t, path, errs)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			fail("want a list, got %s", got(n))
			return
		}
		for i, e := range n.Content {
			check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			fail("want a mapping of keys, got %s", got(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			fail("want %s, got %s", describe(t), got(n))
			return
		}
		if _, err := strconv.ParseInt(n.Value, 0, t.Bits()); err != nil {
			fail("want %s, got %s", describe(t), got(n))
		}
	case reflect.Float32, reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
			fail("want %s, got %s", describe(t), got(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			fail("want %s, got %s", describe(t), got(n))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			fail("want %s, got %s", describe(t), got(n))
		}
	default:
		fail("unsupported type %s", t)
	}
}

func checkStruct(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	fields := make(map[string]reflect.Type, t.NumField())
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" { // "<<: *defaults" (or a list of them)
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					check(m, t, path, errs)
				}
			} else {
				check(v, t, path, errs)
			}
			continue
		}
		p := join(path, k.Value)
		if ft, ok := fields[k.Value]; ok {
			check(v, ft, p, errs)
			continue
		}
		if k.Value == "api_key_env" && ignoresAPIKeyEnv(t) {
			continue // the blueprint's files carry it; its code ignores it, so do we
		}
		var err error
		if envs, ok := secretKey(t, k.Value); ok {
			err = fmt.Errorf("secrets are not read from the file; set %s in the environment", envs)
		} else if s := closest(k.Value, names); s != "" {
			err = fmt.Errorf("unknown key; did you mean %q?", s)
		} else {
			err = fmt.Errorf("unknown key")
		}
		*errs = append(*errs, &FieldError{Field: p, Line: k.Line, Err: err})
	}
}

func ignoresAPIKeyEnv(t reflect.Type) bool {
	return t == reflect.TypeFor[flywheel.JudgeConfig]() || t == reflect.TypeFor[flywheel.EmbeddingConfig]()
}

// secretKey reports whether key names a secret of section t, and the
// environment variables it is read from instead.
func secretKey(t reflect.Type, key string) (string, bool) {
	switch {
	case t == reflect.TypeFor[flywheel.JudgeConfig]() && key == "api_key":
		return "LLM_JUDGE_API_KEY (or NVIDIA_API_KEY)", true
	case t == reflect.TypeFor[flywheel.EmbeddingConfig]() && key == "api_key":
		return "EMB_API_KEY (or NVIDIA_API_KEY)", true
	case t == reflect.TypeFor[NMPConfig]():
		switch key {
		case "api_key", "nemo_api_key":
			return "NEMO_API_KEY (or NVIDIA_API_KEY)", true
		case "nim_api_key":
			return "NIM_API_KEY (or NVIDIA_API_KEY)", true
		case "datastore_api_key":
			return "DATASTORE_API_KEY (or NVIDIA_API_KEY)", true
		case "hf_token":
			return "HF_TOKEN", true
		}
	case t == reflect.TypeFor[ElasticsearchConfig]():
		switch key {
		case "password":
			return "ELASTICSEARCH_PASSWORD", true
		case "api_key":
			return "ELASTICSEARCH_API_KEY", true
		}
	case t == reflect.TypeFor[CaptureConfig]() && (key == "api_key" || key == "upstream_api_key"):
		return "CAPTURE_UPSTREAM_API_KEY (or OPENAI_API_KEY)", true
	}
	return "", false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return `a duration such as "90s" or "1h30m"`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	default:
		return t.Kind().String()
	}
}

func got(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return strconv.Quote(n.Value)
	}
}

// closest returns the name within edit distance 2 of key, or "".
func closest(key string, names []string) string {
	best, bestD := "", 3
	for _, n := range slices.Sorted(slices.Values(names)) {
		if d := distance(key, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
