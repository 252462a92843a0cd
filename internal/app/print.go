package app

import (
	"io"
	"sort"
	"strings"

	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

// secretWords mark keys whose values config print masks.
var secretWords = []string{"password", "token", "key", "secret", "sha256"}

func isSecret(key string) bool {
	last := key
	if i := strings.LastIndex(key, "."); i >= 0 {
		last = key[i+1:]
	}
	if strings.HasSuffix(last, "_file") || last == "key_id" || last == "id" {
		return false // paths and key ids are not secrets
	}
	for _, w := range secretWords {
		if strings.Contains(last, w) {
			return true
		}
	}
	return false
}

// printConfig writes the effective configuration as YAML with secrets masked.
func printConfig(w io.Writer, v *viper.Viper) error {
	settings := v.AllSettings()
	masked := maskSecrets("", settings)
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	defer enc.Close()
	return enc.Encode(masked)
}

func maskSecrets(prefix string, v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			out[k] = maskSecrets(key, val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = maskSecrets(prefix, val)
		}
		return out
	case []ingest.TokenConfig:
		out := make([]any, len(t))
		for i, tc := range t {
			out[i] = map[string]any{"name": tc.Name, "sha256": "***", "sources": tc.Sources, "types": tc.Types, "regions": tc.Regions, "levels": tc.Levels}
		}
		return out
	case []PseudonymKey:
		out := make([]any, len(t))
		for i, k := range t {
			out[i] = map[string]any{"id": k.ID, "key": mask(k.Key), "key_file": k.KeyFile}
		}
		return out
	case string:
		if isSecret(prefix) {
			return mask(t)
		}
	}
	return v
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}
