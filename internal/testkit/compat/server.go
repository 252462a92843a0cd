package compat

import (
	"context"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Server is an Engine over a clickhouse-go native connection.
type Server struct{ Conn driver.Conn }

// Name implements Engine.
func (s Server) Name() string { return "clickhouse-server" }

// Version implements Engine.
func (s Server) Version(ctx context.Context) (int, int, error) {
	var v string
	if err := s.Conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return 0, 0, err
	}
	return ParseVersion(v)
}

// Exec implements Engine.
func (s Server) Exec(ctx context.Context, sql string) error { return s.Conn.Exec(ctx, sql) }

// Query implements Engine.
func (s Server) Query(ctx context.Context, sql string) ([]string, int, error) {
	rows, err := s.Conn.Query(ctx, sql)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	cols := rows.Columns()
	n := 0
	for rows.Next() {
		n++
	}
	return cols, n, rows.Err()
}
