//go:build chdb

package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	chdb "github.com/chdb-io/chdb-go/chdb-purego"
)

// ChDB is an Engine over the current ClickHouse engine loaded in-process
// from libchdb.so (CHDB_LIB_PATH; deploy/local/chdb.sh fetches it). chDB
// allows one session per process, so Open returns the same one each time.
type ChDB struct {
	mu   sync.Mutex
	conn chdb.ChdbConn
}

var (
	chdbOnce sync.Once
	chdbEng  *ChDB
	chdbErr  error
)

// OpenChDB starts (once per process) a chDB session storing under dir.
func OpenChDB(dir string) (*ChDB, error) {
	chdbOnce.Do(func() {
		conn, err := chdb.NewConnectionFromConnString(dir)
		if err != nil {
			chdbErr = fmt.Errorf("start chDB in %s: %w", dir, err)
			return
		}
		chdbEng = &ChDB{conn: conn}
	})
	return chdbEng, chdbErr
}

// Name implements Engine.
func (c *ChDB) Name() string { return "chDB" }

func (c *ChDB) query(sql, format string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := c.conn.Query(sql, format)
	if err != nil {
		return nil, err
	}
	if res == nil {
		return nil, nil
	}
	defer res.Free()
	if err := res.Error(); err != nil {
		return nil, err
	}
	return append([]byte(nil), res.Buf()...), nil
}

// Version implements Engine.
func (c *ChDB) Version(ctx context.Context) (int, int, error) {
	b, err := c.query("SELECT version()", "TabSeparated")
	if err != nil {
		return 0, 0, err
	}
	return ParseVersion(strings.TrimSpace(string(b)))
}

// Exec implements Engine.
func (c *ChDB) Exec(ctx context.Context, sql string) error {
	_, err := c.query(sql, "TabSeparated")
	return err
}

// Query implements Engine.
func (c *ChDB) Query(ctx context.Context, sql string) ([]string, int, error) {
	b, err := c.query(sql, "JSONCompact")
	if err != nil {
		return nil, 0, err
	}
	var out struct {
		Meta []struct {
			Name string `json:"name"`
		} `json:"meta"`
		Rows int `json:"rows"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, 0, fmt.Errorf("decode chDB result: %w", err)
	}
	cols := make([]string, len(out.Meta))
	for i, m := range out.Meta {
		cols[i] = m.Name
	}
	return cols, out.Rows, nil
}
