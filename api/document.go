package api

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var documentYAML []byte

// DocumentYAML returns the OpenAPI document as written (YAML).
func DocumentYAML() []byte {
	return append([]byte(nil), documentYAML...)
}

// DocumentJSON returns the OpenAPI document encoded as JSON.
func DocumentJSON() ([]byte, error) {
	var doc any
	if err := yaml.Unmarshal(documentYAML, &doc); err != nil {
		return nil, fmt.Errorf("parse openapi.yaml: %w", err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode openapi document: %w", err)
	}
	return b, nil
}
