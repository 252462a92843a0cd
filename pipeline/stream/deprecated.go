package stream

import "github.com/nats-io/nats.go/jetstream"

// The names below remain only while cmd/epiwatch still passes the client's
// JetStream context to the components; delete this file with the Deps
// fields that use them once every caller passes a *Bus.

// JetStream is the client's JetStream context.
//
// Deprecated: pass a *Bus (Deps.Bus).
type JetStream = jetstream.JetStream

// JSStream is the client's handle of one stream.
//
// Deprecated: read through Bus.GetMsg and Bus.LastMsg.
type JSStream = jetstream.Stream

// Bus returns the bus the publisher publishes on.
//
// Deprecated: for ingest.Deps built with a Publisher only; pass Deps.Bus.
func (p *Publisher) Bus() *Bus { return NewBus(p.js) }
