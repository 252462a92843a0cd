package clickhouse_test

import (
	"context"
	"net"
	"testing"
	"time"

	chsink "github.com/epiwatch/epiwatch/consumers/clickhouse"
	"github.com/epiwatch/epiwatch/internal/testkit/chtest"
)

func TestAddrs(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:9000", []string{"127.0.0.1:9000"}},
		{"a:1,b:2", []string{"a:1", "b:2"}},
		{" a:1 , ,b:2, ", []string{"a:1", "b:2"}},
		{"", nil},
	} {
		got := chsink.Config{Addr: tc.addr}.Addrs()
		if len(got) != len(tc.want) {
			t.Errorf("%q: %q, want %q", tc.addr, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: %q, want %q", tc.addr, got, tc.want)
			}
		}
	}
}

// TestOpenSkipsDeadNode: with several addresses, a node that refuses
// connections is skipped for the next one (a killed replica of a cluster).
func TestOpenSkipsDeadNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now

	cfg := chtest.Config("default")
	cfg.Addr = dead + "," + cfg.Addr
	cfg.DialTimeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := chsink.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open %s: %v", cfg.Addr, err)
	}
	defer conn.Close()
	var one uint8
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query through the second address: %v, %d", err, one)
	}

	cfg.Addr = dead
	if _, err := chsink.Open(ctx, cfg); err == nil {
		t.Fatalf("open of only a dead address succeeded")
	}
}
