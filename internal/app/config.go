package app

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/epiwatch/epiwatch/consumers/alerts"
	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/pipeline/decide"
	"github.com/epiwatch/epiwatch/pipeline/detect"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/process"
	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Config is the whole configuration, composed of the packages' own config
// structs. Viper is read here and nowhere else.
type Config struct {
	DataDir  string `mapstructure:"data_dir" yaml:"data_dir"`
	LogLevel string `mapstructure:"log_level" yaml:"log_level"`
	// LogFormat is text (default, for people) or json (for log shippers).
	LogFormat string `mapstructure:"log_format" yaml:"log_format"`

	NATS       NATSConfig       `mapstructure:"nats" yaml:"nats"`
	Stream     StreamConfig     `mapstructure:"stream" yaml:"stream"`
	HTTP       HTTPConfig       `mapstructure:"http" yaml:"http"`
	Metrics    MetricsConfig    `mapstructure:"metrics" yaml:"metrics"`
	Ingest     IngestConfig     `mapstructure:"ingest" yaml:"ingest"`
	Pseudonym  PseudonymConfig  `mapstructure:"pseudonym" yaml:"pseudonym"`
	ClickHouse ClickHouseConfig `mapstructure:"clickhouse" yaml:"clickhouse"`
	Process    process.Config   `mapstructure:"process" yaml:"process"`
	Decide     decide.Config    `mapstructure:"decide" yaml:"decide"`
	Detect     detect.Config    `mapstructure:"detect" yaml:"detect"`
	Alerts     alerts.Config    `mapstructure:"alerts" yaml:"alerts"`
	Regions    []schemas.Region `mapstructure:"regions" yaml:"regions"`
}

// NATSConfig says which NATS to use: the embedded server (url empty) or a cluster.
type NATSConfig struct {
	URL    string `mapstructure:"url" yaml:"url"`
	Listen string `mapstructure:"listen" yaml:"listen"`
	// SyncInterval: "always" (fsync before every ack; the default) or a duration.
	SyncInterval string `mapstructure:"sync_interval" yaml:"sync_interval"`
	MaxStore     int64  `mapstructure:"max_store" yaml:"max_store"`
	User         string `mapstructure:"user" yaml:"user"`
	Password     string `mapstructure:"password" yaml:"password"`
	Token        string `mapstructure:"token" yaml:"token"`
	CredsFile    string `mapstructure:"creds_file" yaml:"creds_file"`
	NKeyFile     string `mapstructure:"nkey_file" yaml:"nkey_file"`
	TLSCA        string `mapstructure:"tls_ca" yaml:"tls_ca"`
	TLSCert      string `mapstructure:"tls_cert" yaml:"tls_cert"`
	TLSKey       string `mapstructure:"tls_key" yaml:"tls_key"`
}

// StreamConfig is the JetStream layout.
type StreamConfig struct {
	Replicas        int           `mapstructure:"replicas" yaml:"replicas"`
	DuplicateWindow time.Duration `mapstructure:"duplicate_window" yaml:"duplicate_window"`
	EventsMaxBytes  int64         `mapstructure:"events_max_bytes" yaml:"events_max_bytes"`
	EventsMaxAge    time.Duration `mapstructure:"events_max_age" yaml:"events_max_age"`
	EventsDiscard   string        `mapstructure:"events_discard" yaml:"events_discard"`
	// LeaseTTL: how long the active process/decide replica's lease
	// outlives its last renewal — the longest a standby waits.
	LeaseTTL time.Duration `mapstructure:"lease_ttl" yaml:"lease_ttl"`
}

// HTTPConfig is the ingest API server.
type HTTPConfig struct {
	Addr    string `mapstructure:"addr" yaml:"addr"`
	TLSCert string `mapstructure:"tls_cert" yaml:"tls_cert"`
	TLSKey  string `mapstructure:"tls_key" yaml:"tls_key"`
	// Insecure allows plain HTTP on an address reachable beyond this
	// machine (behind a proxy that terminates TLS): without it, ingest
	// refuses to start there without tls_cert and tls_key.
	Insecure bool `mapstructure:"insecure" yaml:"insecure"`
	// MetricsAddr, if set, serves /metrics, /healthz and /readyz on their
	// own listener instead of the API's, so the API port exposes only the
	// API.
	MetricsAddr  string        `mapstructure:"metrics_addr" yaml:"metrics_addr"`
	ReadTimeout  time.Duration `mapstructure:"read_timeout" yaml:"read_timeout"`
	WriteTimeout time.Duration `mapstructure:"write_timeout" yaml:"write_timeout"`
}

// MetricsConfig is the /metrics endpoint of components that serve no HTTP API.
type MetricsConfig struct {
	Addr string `mapstructure:"addr" yaml:"addr"`
}

// IngestConfig bounds requests and lists the data sources' tokens.
type IngestConfig struct {
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	MaxBatch     int   `mapstructure:"max_batch" yaml:"max_batch"`
	PublishEach  bool  `mapstructure:"publish_each" yaml:"publish_each"`
	// MaxConcurrentRequests and MaxInFlightBytes bound the POST requests
	// served at once and their bodies' bytes; beyond, 429 with Retry-After.
	MaxConcurrentRequests int                  `mapstructure:"max_concurrent_requests" yaml:"max_concurrent_requests"`
	MaxInFlightBytes      int64                `mapstructure:"max_in_flight_bytes" yaml:"max_in_flight_bytes"`
	Tokens                []ingest.TokenConfig `mapstructure:"tokens" yaml:"tokens"`
}

// PseudonymKey is one HMAC key of the pseudonym key ring.
type PseudonymKey struct {
	ID      string `mapstructure:"id" yaml:"id"`
	Key     string `mapstructure:"key" yaml:"key"`
	KeyFile string `mapstructure:"key_file" yaml:"key_file"`
}

// PseudonymConfig is the key ring; the active key writes, older ones resolve.
type PseudonymConfig struct {
	KeyID   string         `mapstructure:"key_id" yaml:"key_id"`
	Key     string         `mapstructure:"key" yaml:"key"`
	KeyFile string         `mapstructure:"key_file" yaml:"key_file"`
	Retired []PseudonymKey `mapstructure:"retired" yaml:"retired"`
}

// ClickHouseConfig is the connection and the sink's batching.
type ClickHouseConfig struct {
	chsink.Config `mapstructure:",squash" yaml:",inline"`
	Sink          chsink.SinkConfig `mapstructure:"sink" yaml:"sink"`
}

// DefaultConfig returns every default; each key registered with viper comes
// from here, so env variables reach every key.
func DefaultConfig() Config {
	sc := stream.DefaultConfig()
	ic := ingest.DefaultConfig()
	return Config{
		DataDir:   "./data",
		LogLevel:  "info",
		LogFormat: "text",
		NATS:      NATSConfig{Listen: "127.0.0.1:4222", SyncInterval: "always"},
		Stream:    StreamConfig{Replicas: sc.Replicas, DuplicateWindow: sc.DuplicateWindow, EventsMaxBytes: sc.EventsMaxBytes, EventsMaxAge: sc.EventsMaxAge, EventsDiscard: sc.EventsDiscard, LeaseTTL: stream.DefaultLeaseTTL},
		HTTP:      HTTPConfig{Addr: "127.0.0.1:8080", ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second},
		Metrics:   MetricsConfig{Addr: "127.0.0.1:9464"},
		Ingest:    IngestConfig{MaxBodyBytes: ic.MaxBodyBytes, MaxBatch: ic.MaxBatch, MaxConcurrentRequests: 512, MaxInFlightBytes: 1 << 30},
		Pseudonym: PseudonymConfig{KeyID: "k1"},
		ClickHouse: ClickHouseConfig{
			Config: chsink.Config{Addr: "127.0.0.1:9000", Database: "epiwatch", User: "default", DialTimeout: 5 * time.Second},
			Sink:   chsink.DefaultSinkConfig(),
		},
		Process: process.DefaultConfig(),
		Decide:  decide.DefaultConfig(),
		Detect:  detect.DefaultConfig(),
		Alerts:  alerts.DefaultConfig(),
	}
}

// registerDefaults walks the struct by its mapstructure tags and calls
// SetDefault for every leaf, so viper knows every key (AutomaticEnv does not
// reach Unmarshal for keys it has not seen).
func registerDefaults(v *viper.Viper, prefix string, val reflect.Value) {
	t := val.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), val.Field(i)
		key, squash, ok := fieldKey(f, prefix)
		switch {
		case squash:
			registerDefaults(v, prefix, fv)
			continue
		case !ok:
			continue
		}
		if isSection(f.Type) {
			registerDefaults(v, key, fv)
			continue
		}
		v.SetDefault(key, fv.Interface())
	}
}

// Flags that override configuration keys.
var flagKeys = map[string]string{
	"data-dir":        "data_dir",
	"log-level":       "log_level",
	"nats-url":        "nats.url",
	"nats-listen":     "nats.listen",
	"http-addr":       "http.addr",
	"metrics-addr":    "metrics.addr",
	"clickhouse-addr": "clickhouse.addr",
	"clickhouse-db":   "clickhouse.database",
}

// AddFlags declares the flags that override configuration keys (and
// --config), for every command.
func AddFlags(fs *pflag.FlagSet) {
	def := DefaultConfig()
	fs.String("config", "", "configuration file (YAML); default: ./epiwatch.yaml if present")
	fs.String("data-dir", def.DataDir, "directory for the embedded NATS store, keys and local ClickHouse")
	fs.String("log-level", def.LogLevel, "debug, info, warn or error")
	fs.String("nats-url", def.NATS.URL, "NATS cluster URL; empty starts the embedded server")
	fs.String("nats-listen", def.NATS.Listen, "listen address of the embedded NATS server")
	fs.String("http-addr", def.HTTP.Addr, "listen address of the ingest API (and /metrics)")
	fs.String("metrics-addr", def.Metrics.Addr, "listen address of /metrics for components without the ingest API")
	fs.String("clickhouse-addr", def.ClickHouse.Addr, "ClickHouse native protocol address host:port; a cluster's nodes separated by commas, tried in order")
	fs.String("clickhouse-db", def.ClickHouse.Database, "ClickHouse database")
}

// LoadConfig builds the effective configuration: defaults < file < env
// (EPIWATCH_<SECTION>_<KEY>) < flags.
func LoadConfig(fs *pflag.FlagSet, getenv func(string) string) (Config, *viper.Viper, error) {
	v := viper.New()
	registerDefaults(v, "", reflect.ValueOf(DefaultConfig()))
	v.SetEnvPrefix("EPIWATCH")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	file, _ := fs.GetString("config")
	if file == "" {
		file = getenv("EPIWATCH_CONFIG")
	}
	if file == "" {
		if _, err := os.Stat("epiwatch.yaml"); err == nil {
			file = "epiwatch.yaml"
		}
	}
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, nil, fmt.Errorf("read config file %s: %w", file, err)
		}
	}
	for flag, key := range flagKeys {
		if f := fs.Lookup(flag); f != nil {
			if err := v.BindPFlag(key, f); err != nil {
				return Config{}, nil, err
			}
		}
	}
	if err := unknownKeys(v, file); err != nil {
		return Config{}, nil, err
	}
	var cfg Config
	if err := v.UnmarshalExact(&cfg); err != nil { // a value of the wrong type
		return Config{}, nil, fmt.Errorf("configuration%s: %s", inFile(file), decodeError(err))
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, nil, fmt.Errorf("configuration%s: %w", inFile(file), err)
	}
	return cfg, v, nil
}

// Validate checks the configuration once, naming the key at fault.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("data_dir: must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.NATS.Listen); c.NATS.URL == "" && err != nil {
		return fmt.Errorf("nats.listen: %q is not host:port", c.NATS.Listen)
	}
	if _, err := c.SyncInterval(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		return fmt.Errorf("http.addr: %q is not host:port", c.HTTP.Addr)
	}
	if (c.HTTP.TLSCert == "") != (c.HTTP.TLSKey == "") {
		return fmt.Errorf("http.tls_cert and http.tls_key: set both or neither")
	}
	if len(c.ClickHouse.Addrs()) == 0 {
		return fmt.Errorf("clickhouse.addr: empty; want host:port, or several separated by commas")
	}
	for _, a := range c.ClickHouse.Addrs() {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("clickhouse.addr: %q is not host:port (several are separated by commas)", a)
		}
	}
	if err := c.StreamLayout().Validate(); err != nil {
		return err
	}
	if c.ClickHouse.Database == "" {
		return fmt.Errorf("clickhouse.database: must not be empty")
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log_level: %q (want debug, info, warn or error)", c.LogLevel)
	}
	if err := c.Alerts.Validate(); err != nil {
		return err
	}
	if _, err := ingest.NewTokens(c.Ingest.Tokens); err != nil {
		return err
	}
	if err := c.Process.Validate(); err != nil {
		return err
	}
	if err := c.Decide.Validate(); err != nil {
		return err
	}
	if err := c.Detect.Validate(); err != nil {
		return err
	}
	return nil
}

// SyncInterval parses nats.sync_interval; 0 means always.
func (c *Config) SyncInterval() (time.Duration, error) {
	s := strings.TrimSpace(c.NATS.SyncInterval)
	if s == "" || s == "always" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("nats.sync_interval: %q (want \"always\" or a positive duration like 10s)", s)
	}
	return d, nil
}

// StreamLayout converts to the stream package's config.
func (c *Config) StreamLayout() stream.Config {
	return stream.Config{Replicas: c.Stream.Replicas, DuplicateWindow: c.Stream.DuplicateWindow, EventsMaxBytes: c.Stream.EventsMaxBytes, EventsMaxAge: c.Stream.EventsMaxAge, EventsDiscard: c.Stream.EventsDiscard, LeaseTTL: c.Stream.LeaseTTL}
}

// NATSStoreDir is where the embedded server keeps JetStream.
func (c *Config) NATSStoreDir() string { return filepath.Join(c.DataDir, "nats") }

// RegionRef is the shipped region reference with configured additions.
func (c *Config) RegionRef() (*schemas.Regions, error) {
	rs := schemas.DefaultRegions()
	if len(c.Regions) == 0 {
		return rs, nil
	}
	out, err := rs.With(c.Regions)
	if err != nil {
		return nil, fmt.Errorf("regions: %w", err)
	}
	return out, nil
}

// IngestURL is the ingest endpoint of this HTTP server as a client on this
// machine reaches it: a wildcard listen address is reached on the loopback.
func (h HTTPConfig) IngestURL() string {
	host, port, err := net.SplitHostPort(h.Addr)
	if err != nil {
		host, port = "127.0.0.1", "8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http"
	if h.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/v1/events"
}
