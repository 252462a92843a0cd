// Package chtest gives integration tests a fresh database on the real local
// ClickHouse server that deploy/local/clickhouse.sh starts (the test suite,
// deploy/local/test.sh, starts it before `go test`). There is no fake: a test
// that needs ClickHouse and cannot reach it fails and says how to start it.
package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
)

// DB is a database created for one test and dropped when it ends.
type DB struct {
	Conn   driver.Conn // its default database is Name
	Name   string
	Config chsink.Config // connection settings, Database = Name
}

// Addr is the native-protocol address of the test server:
// EPIWATCH_TEST_CLICKHOUSE_ADDR, or the local script's default 127.0.0.1:9000.
func Addr() string {
	if a := os.Getenv("EPIWATCH_TEST_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:9000"
}

// Config returns connection settings for the test server and database db.
func Config(db string) chsink.Config {
	return chsink.Config{
		Addr:        Addr(),
		Database:    db,
		User:        envOr("EPIWATCH_TEST_CLICKHOUSE_USER", "default"),
		Password:    os.Getenv("EPIWATCH_TEST_CLICKHOUSE_PASSWORD"),
		DialTimeout: 5 * time.Second,
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// New creates an empty database with a unique name on the test server.
// Migrations are the caller's business (most call chsink.Migrate).
func New(t testing.TB) *DB {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := chsink.Open(ctx, Config("default"))
	if err != nil {
		t.Fatalf("ClickHouse at %s is not reachable (%v); start it with deploy/local/clickhouse.sh start, or run the suite with deploy/local/test.sh", Addr(), err)
	}
	if err := admin.Exec(ctx, "CREATE DATABASE `"+name+"`"); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	cfg := Config(name)
	cfg.DefaultDatabase = true
	conn, err := chsink.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("connect to test database: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if os.Getenv("EPIWATCH_KEEP_TEST_DB") == "" {
			_ = admin.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"`")
		} else {
			t.Logf("kept ClickHouse database %s", name)
		}
		admin.Close()
	})
	return &DB{Conn: conn, Name: name, Config: Config(name)}
}

// Count runs a count query and fails the test on error.
func (db *DB) Count(t testing.TB, query string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := db.Conn.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
