// Package clickhouse is the ClickHouse consumer: it lands events, indicators,
// decisions and alert records from JetStream in ClickHouse, acking only after
// the write, and applies the schema migrations.
//
// Idempotence, in two layers: every table is a ReplacingMergeTree keyed by
// the record's own id (event_id, region+date, decision_id, alert_id), and
// what analysts read goes through FINAL views, so a redelivered or re-sent
// batch never shows twice. On servers that support it (22.2+) each insert
// also carries a deterministic insert_deduplication_token built from the
// batch's stream sequences, so a retried insert whose first outcome was
// unknown is dropped at insert time. ClickHouse 18.16 (Debian) has only the
// first layer; both are tested.
package clickhouse

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	ddl "github.com/epiwatch/epiwatch/schemas/clickhouse"
)

// Config is the connection to ClickHouse.
type Config struct {
	// Addr is host:port of the native protocol, or several separated by
	// commas (the nodes of a cluster): connections go to the first that
	// answers, in order, so a killed node is skipped.
	Addr     string `mapstructure:"addr"`
	Database string `mapstructure:"database"`
	// Cluster names a cluster of the servers' remote_servers for cluster
	// mode ("" for a single server): migrations create replicated tables ON
	// CLUSTER with Distributed tables under the same names.
	Cluster  string `mapstructure:"cluster"`
	User     string `mapstructure:"user"`
	Password string `mapstructure:"password"`
	TLS      bool   `mapstructure:"tls"`
	// TLSInsecureSkipVerify is for test certificates only.
	TLSInsecureSkipVerify bool          `mapstructure:"tls_insecure_skip_verify"`
	DialTimeout           time.Duration `mapstructure:"dial_timeout"`
	// DefaultDatabase makes Database the connection's default database, so
	// unqualified table names resolve to it (as Grafana's data source does).
	// It must exist; epiwatch's own statements are qualified and leave it off.
	DefaultDatabase bool `mapstructure:"-" yaml:"-"`
}

// Open connects over the native protocol and checks the server answers.
func Open(ctx context.Context, cfg Config) (driver.Conn, error) {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	user := cfg.User
	if user == "" {
		user = "default"
	}
	opts := &ch.Options{
		Addr: cfg.Addrs(),
		// In order: the first node is the usual coordinator, the others
		// are there for when it is down.
		ConnOpenStrategy: ch.ConnOpenInOrder,
		Auth:             ch.Auth{Username: user, Password: cfg.Password},
		DialTimeout:      cfg.DialTimeout,
		Compression:      &ch.Compression{Method: ch.CompressionLZ4},
		// The driver logs "unsupported version" for servers older than it
		// targets; 18.16 works for everything we use (see RELIABILITY.md).
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
	}
	if cfg.DefaultDatabase {
		opts.Auth.Database = cfg.Database
	}
	if cfg.TLS {
		opts.TLS = &tls.Config{InsecureSkipVerify: cfg.TLSInsecureSkipVerify} //nolint:gosec // opt-in for test certificates
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open ClickHouse at %s: %w", cfg.Addr, err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("ClickHouse at %s does not answer (start it with deploy/local/clickhouse.sh start): %w", cfg.Addr, err)
	}
	return conn, nil
}

// Addrs are the addresses in Addr, trimmed, empty ones dropped.
func (c Config) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Capabilities are what the server supports beyond ClickHouse 18.16.
type Capabilities struct {
	Version string
	// DedupToken: insert_deduplication_token with non_replicated_deduplication_window (22.2+).
	DedupToken bool
}

// Detect reads the server version and derives its capabilities.
func Detect(conn driver.Conn) (Capabilities, error) {
	v, err := conn.ServerVersion()
	if err != nil {
		return Capabilities{}, fmt.Errorf("read ClickHouse server version: %w", err)
	}
	c := Capabilities{Version: fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)}
	c.DedupToken = ddl.AtLeast(int(v.Version.Major), int(v.Version.Minor), 22, 2)
	return c, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }
