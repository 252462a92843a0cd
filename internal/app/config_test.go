package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func flagsFor(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return fs
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Precedence: defaults < file < environment < flags, for every layer.
func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "epiwatch.yaml")
	os.WriteFile(file, []byte("clickhouse:\n  addr: file:9000\n  database: from_file\nhttp:\n  addr: 127.0.0.1:7001\nnats:\n  listen: 127.0.0.1:7002\n"), 0o600)

	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(Config) string
	}{
		{"defaults", nil, nil, func(c Config) string {
			if c.NATS.URL != "" || c.NATS.Listen != "127.0.0.1:4222" || c.DataDir != "./data" || c.HTTP.Addr != "127.0.0.1:8080" ||
				c.ClickHouse.Addr != "127.0.0.1:9000" || c.ClickHouse.Database != "epiwatch" || c.NATS.SyncInterval != "always" {
				return "defaults differ from the documented ones"
			}
			return ""
		}},
		{"file", []string{"--config", file}, nil, func(c Config) string {
			if c.ClickHouse.Addr != "file:9000" || c.ClickHouse.Database != "from_file" || c.HTTP.Addr != "127.0.0.1:7001" {
				return "file values not applied"
			}
			return ""
		}},
		{"env over file", []string{"--config", file}, map[string]string{"EPIWATCH_CLICKHOUSE_ADDR": "env:9000", "EPIWATCH_HTTP_ADDR": "127.0.0.1:7003", "EPIWATCH_CLICKHOUSE_SINK_BATCH_SIZE": "123"}, func(c Config) string {
			if c.ClickHouse.Addr != "env:9000" || c.HTTP.Addr != "127.0.0.1:7003" || c.ClickHouse.Database != "from_file" || c.ClickHouse.Sink.BatchSize != 123 {
				return "env did not override the file"
			}
			return ""
		}},
		{"flag over env", []string{"--config", file, "--clickhouse-addr", "flag:9000"}, map[string]string{"EPIWATCH_CLICKHOUSE_ADDR": "env:9000"}, func(c Config) string {
			if c.ClickHouse.Addr != "flag:9000" {
				return "flag did not override env"
			}
			return ""
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			cfg, _, err := LoadConfig(flagsFor(t, tc.args...), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(cfg); msg != "" {
				t.Fatalf("%s: %+v", msg, cfg)
			}
		})
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"EPIWATCH_NATS_SYNC_INTERVAL=soon", "nats.sync_interval"},
		{"EPIWATCH_HTTP_ADDR=nocolon", "http.addr"},
		{"EPIWATCH_CLICKHOUSE_ADDR=127.0.0.1:9000,nocolon", `clickhouse.addr: "nocolon"`},
		{"EPIWATCH_CLICKHOUSE_ADDR= , ", "clickhouse.addr: empty"},
		{"EPIWATCH_LOG_LEVEL=loud", "log_level"},
	} {
		k, v, _ := strings.Cut(tc.env, "=")
		t.Setenv(k, v)
		_, _, err := LoadConfig(flagsFor(t), os.Getenv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.env, err, tc.want)
		}
		os.Unsetenv(k)
	}
}

func TestConfigRejectsUnknownKeys(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"clickhouse:\n  adr: typo:9000\n", "unknown key clickhouse.adr in FILE; did you mean clickhouse.addr?"},
		{"log_levl: debug\n", "unknown key log_levl in FILE; did you mean log_level?"},
		{"decide:\n  levles:\n    initial: 2\n", "unknown key decide.levles.initial in FILE; did you mean decide.levels.initial?"},
		{"favourite_colour: blue\n", "unknown key favourite_colour in FILE ("},
	} {
		file := filepath.Join(t.TempDir(), "e.yaml")
		os.WriteFile(file, []byte(tt.yaml), 0o600)
		_, _, err := LoadConfig(flagsFor(t, "--config", file), env(nil))
		want := strings.ReplaceAll(tt.want, "FILE", file)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "decoding failed") {
			t.Errorf("%q: error %v, want one containing %q", tt.yaml, err, want)
		}
	}
	// Keys under maps are the user's own: a pathogen's serial interval.
	file := filepath.Join(t.TempDir(), "ok.yaml")
	os.WriteFile(file, []byte("process:\n  serial_intervals:\n    influenza:\n      mean: 2.6\n      sd: 1.5\n"), 0o600)
	if _, _, err := LoadConfig(flagsFor(t, "--config", file), env(nil)); err != nil {
		t.Errorf("a serial interval of one's own: %v", err)
	}
}
