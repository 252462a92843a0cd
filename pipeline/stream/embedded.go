package stream

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures the NATS server epiwatch starts in-process when no
// external cluster is configured.
type EmbeddedConfig struct {
	// Listen is host:port for clients (other epiwatch processes, the nats CLI).
	// Port 0 picks a free port (tests).
	Listen string
	// StoreDir is where JetStream keeps its files.
	StoreDir string
	// SyncInterval is how often JetStream fsyncs its files. Zero means
	// "always": every acknowledged message is on disk before the ack, so an OS
	// crash or power loss cannot lose an event the producer was told was
	// accepted (the server default, 2 minutes, can). The benchmark measures
	// what it costs.
	SyncInterval time.Duration
	// MaxStore bounds JetStream's disk use (0: server default, a share of the disk).
	MaxStore int64
	// User/Password or Token, required when Listen is not a loopback address.
	User, Password, Token string
}

// Embedded is a running in-process NATS server.
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server with JetStream and waits until it
// accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if !isLoopback(host) && cfg.Password == "" && cfg.Token == "" {
		return nil, fmt.Errorf("embedded nats: listening on %s beyond loopback requires nats.user/nats.password or nats.token", cfg.Listen)
	}
	opts := &server.Options{
		ServerName:            "epiwatch-embedded",
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              filepath.Clean(cfg.StoreDir),
		JetStreamMaxStore:     cfg.MaxStore,
		NoSigs:                true,
		NoLog:                 true,
		MaxPayload:            8 << 20,
		DisableShortFirstPing: true,
	}
	if cfg.SyncInterval <= 0 {
		opts.SyncAlways = true
		opts.SyncInterval = 2 * time.Minute
	} else {
		opts.SyncInterval = cfg.SyncInterval
	}
	if cfg.Token != "" {
		opts.Authorization = cfg.Token
	} else if cfg.Password != "" {
		opts.Username, opts.Password = cfg.User, cfg.Password
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(15 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats: not ready after 15s on %s (is the port in use?)", cfg.Listen)
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
