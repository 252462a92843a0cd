package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/epiwatch/epiwatch/internal/testkit/proc"

	"github.com/epiwatch/epiwatch/internal/testkit/streamtest"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

// TestIngestTransport: beyond loopback the ingest API refuses plain HTTP
// unless http.insecure says a proxy terminates TLS (and then warns at
// start); http.metrics_addr takes /metrics and the health checks off the
// API's listener.
func TestIngestTransport(t *testing.T) {
	ns := streamtest.New(t)
	dir := t.TempDir()
	// A port on every interface: "beyond loopback".
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	metricsAddr := proc.FreeAddr(t)
	write := func(extra string) string {
		cfg := fmt.Sprintf(`data_dir: %s
nats:
  url: %s
http:
  addr: 0.0.0.0:%d
%s
pseudonym:
  key_id: tt
  key: transport-test-key-0123456789abcdef0123456789
ingest:
  tokens:
    - {name: lis, sha256: %s}
`, dir, ns.URL, port, extra, ingest.HashToken("secret-token-of-the-lis"))
		f := filepath.Join(dir, "epiwatch.yaml")
		if err := os.WriteFile(f, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}

	var out, errb proc.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if code := realMain(ctx, []string{"ingest", "--config", write("")}, &out, &errb); code != 2 {
		t.Fatalf("plain HTTP beyond loopback: exit %d, want 2\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "TLS is not configured") || !strings.Contains(errb.String(), "http.insecure") {
		t.Errorf("the refusal does not say what to set:\n%s", errb.String())
	}

	errb = proc.Buffer{}
	file := write(fmt.Sprintf("  insecure: true\n  metrics_addr: %s\n", metricsAddr))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() { done <- realMain(rctx, []string{"ingest", "--config", file}, &out, &errb) }()
	api := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest never became ready on %s:\n%s", metricsAddr, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	status := func(method, url string) int {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(""))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		method, url string
		want        int
	}{
		{"GET", "http://" + metricsAddr + "/metrics", http.StatusOK},
		{"GET", "http://" + metricsAddr + "/healthz", http.StatusOK},
		{"GET", api + "/metrics", http.StatusNotFound},
		{"GET", api + "/healthz", http.StatusNotFound},
		{"POST", api + "/v1/events", http.StatusUnauthorized}, // the API is there, behind its tokens
	} {
		if got := status(c.method, c.url); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.url, got, c.want)
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Errorf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "plain HTTP beyond this machine") {
		t.Errorf("no warning about plain HTTP at start:\n%s", errb.String())
	}
}
