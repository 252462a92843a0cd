// Package streamtest gives each test its own real, embedded NATS JetStream
// server (random port, store in t.TempDir), with epiwatch's streams created.
package streamtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// Server is a running test server with a client connection.
type Server struct {
	Embedded *stream.Embedded
	URL      string
	StoreDir string
	NC       *nats.Conn
	JS       jetstream.JetStream
	// Bus is the components' door to the server (on NC); a Restart
	// replaces it.
	Bus *stream.Bus
	cfg stream.EmbeddedConfig
	t   testing.TB
}

// New starts a server, connects, creates the streams and registers cleanup.
func New(t testing.TB) *Server {
	t.Helper()
	cfg := stream.EmbeddedConfig{Listen: "127.0.0.1:0", StoreDir: t.TempDir()}
	s := &Server{cfg: cfg, StoreDir: cfg.StoreDir, t: t}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	e, err := stream.StartEmbedded(s.cfg)
	if err != nil {
		s.t.Fatalf("start embedded NATS: %v", err)
	}
	s.Embedded, s.URL = e, e.ClientURL()
	// Keep the port across restarts so reconnecting clients find it again.
	s.cfg.Listen = s.URL[len("nats://"):]
	nc, js, err := stream.Connect(s.URL, "streamtest")
	if err != nil {
		s.t.Fatalf("connect: %v", err)
	}
	s.NC, s.JS, s.Bus = nc, js, stream.NewBus(js)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Bus.Ensure(ctx, stream.DefaultConfig()); err != nil {
		s.t.Fatalf("ensure streams: %v", err)
	}
}

// Refs returns the event refs of the server's deployment (its id key,
// created by the first caller): what ingest and the processor name events
// by in subjects and message ids.
func (s *Server) Refs() *schemas.EventRefs {
	s.t.Helper()
	return RefsOf(s.t, s.JS)
}

// RefsOf is Server.Refs for a JetStream context of a test server.
func RefsOf(t testing.TB, js jetstream.JetStream) *schemas.EventRefs {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := stream.LoadEventRefs(ctx, stream.NewBus(js))
	if err != nil {
		t.Fatalf("event refs: %v", err)
	}
	return r
}

// Stop shuts the server down (idempotent).
func (s *Server) Stop() {
	if s.NC != nil {
		s.NC.Close()
		s.NC = nil
	}
	if s.Embedded != nil {
		s.Embedded.Shutdown()
		s.Embedded = nil
	}
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Connect opens an extra client connection (a separate "process").
func (s *Server) Connect(name string) (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	nc, js, err := stream.Connect(s.URL, name)
	if err != nil {
		s.t.Fatalf("connect %s: %v", name, err)
	}
	s.t.Cleanup(nc.Close)
	return nc, js
}

// Open opens an extra bus on its own connection (a separate "process").
func (s *Server) Open(name string) *stream.Bus {
	s.t.Helper()
	b, err := stream.Open(s.URL, name, stream.ClientConfig{})
	if err != nil {
		s.t.Fatalf("connect %s: %v", name, err)
	}
	s.t.Cleanup(b.Close)
	return b
}

// TakeLease hands the lease name (stream.Bus.RunExclusive) to holder behind
// its current holder's back, as a replica that took over after the holder
// was partitioned away would: the holder's next renewal finds the key
// changed and it loses the lease.
func (s *Server) TakeLease(name, holder string) {
	s.t.Helper()
	ctx := context.Background()
	kv, err := s.JS.KeyValue(ctx, schemas.BucketLeases)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := kv.Purge(ctx, "lease."+name); err != nil {
		s.t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "lease."+name, []byte(holder)); err != nil {
		s.t.Fatal(err)
	}
}
