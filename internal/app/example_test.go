package app

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/viper"
	"gopkg.in/yaml.v3"
)

const examplePath = "../../deploy/epiwatch.example.yaml"

// configKeys lists every leaf key viper knows from the defaults.
func configKeys() []string {
	v := viper.New()
	registerDefaults(v, "", reflect.ValueOf(DefaultConfig()))
	keys := v.AllKeys()
	sort.Strings(keys)
	return keys
}

func flatten(prefix string, m map[string]any, out map[string]bool) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
			flatten(key, sub, out)
			continue
		}
		out[key] = true
	}
}

// The example file documents every key (and no key that does not exist), and
// loads as a valid configuration.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", examplePath, err)
	}
	have := map[string]bool{}
	flatten("", m, have)
	// A map-valued key (process.serial_intervals) is documented by its
	// entries, and its entries are known through it.
	under := func(set map[string]bool, k string) bool {
		if set[k] {
			return true
		}
		for h := range set {
			if strings.HasPrefix(h, k+".") || strings.HasPrefix(k, h+".") {
				return true
			}
		}
		return false
	}
	known := map[string]bool{}
	for _, k := range configKeys() {
		known[k] = true
		if !under(have, k) {
			t.Errorf("%s does not document key %s", examplePath, k)
		}
	}
	for k := range have {
		if !under(known, k) {
			t.Errorf("%s documents %s, which epiwatch does not read", examplePath, k)
		}
	}
	abs, _ := filepath.Abs(examplePath)
	if _, _, err := LoadConfig(flagsFor(t, "--config", abs), env(nil)); err != nil {
		t.Fatalf("example does not load: %v", err)
	}
}
