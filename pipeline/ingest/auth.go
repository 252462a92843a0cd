package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"
)

// Authorizer authenticates an ingest request.
type Authorizer interface {
	// Authenticate returns the caller's scope, or an HTTP status (401/403)
	// and a reason that never echoes the presented secret.
	Authenticate(r *http.Request) (*Scope, int, error)
}

// TokenConfig is one data source's bearer token, stored as the hex SHA-256 of
// the token (configuration never holds the token itself; `epiwatch token
// hash` prints the hash of a new token).
type TokenConfig struct {
	Name    string   `mapstructure:"name" json:"name"`
	SHA256  string   `mapstructure:"sha256" json:"sha256"`
	Types   []string `mapstructure:"types" json:"types"`     // event types allowed; empty = all
	Regions []string `mapstructure:"regions" json:"regions"` // region codes or globs (KZ-*); empty = all
	// Sources are the event sources (the events' source field) the token
	// owns: it may publish only events of these sources. Event ids are
	// scoped to their source, so a token that could write another source
	// could also retract or supersede that source's events. Empty: the
	// token's name is its only source (the safe default: one token per
	// data source, named after it).
	Sources []string `mapstructure:"sources" json:"sources"`
	// Levels lets the token set and release manual restriction levels of
	// its regions (POST/DELETE /v1/levels/<region>): a headquarters' token,
	// not a data source's.
	Levels bool `mapstructure:"levels" json:"levels"`
}

// Scope is what an authenticated source may send.
type Scope struct {
	Name    string
	Types   []string
	Regions []string
	// Sources the token owns (never empty: its name by default).
	Sources []string
	Levels  bool
}

type tokenEntry struct {
	hash  [32]byte
	scope Scope
}

// Tokens authenticates bearer tokens against their configured hashes.
type Tokens struct {
	entries []tokenEntry
}

// NewTokens validates the token configuration.
func NewTokens(cfgs []TokenConfig) (*Tokens, error) {
	t := &Tokens{}
	for i, c := range cfgs {
		b, err := hex.DecodeString(strings.TrimSpace(c.SHA256))
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("ingest.tokens[%d] (%s): sha256 must be 64 hex digits (the SHA-256 of the token)", i, c.Name)
		}
		if c.Name == "" {
			return nil, fmt.Errorf("ingest.tokens[%d]: name is required", i)
		}
		for _, p := range c.Regions {
			if _, err := path.Match(p, "KZ-75"); err != nil {
				return nil, fmt.Errorf("ingest.tokens[%d] (%s): bad region pattern %q", i, c.Name, p)
			}
		}
		sources := c.Sources
		if len(sources) == 0 {
			sources = []string{c.Name}
		}
		for _, src := range sources {
			if strings.TrimSpace(src) == "" || strings.TrimSpace(src) != src {
				return nil, fmt.Errorf("ingest.tokens[%d] (%s): sources: %q is not a source name (events carry it in their source field; no blanks around it)", i, c.Name, src)
			}
		}
		var e tokenEntry
		copy(e.hash[:], b)
		e.scope = Scope{Name: c.Name, Types: c.Types, Regions: c.Regions, Sources: sources, Levels: c.Levels}
		t.entries = append(t.entries, e)
	}
	return t, nil
}

// HashToken returns the hex SHA-256 of a token, the form configuration stores.
// Tokens are random (≥ 128 bits), so an unsalted fast hash is enough: unlike a
// password or an IIN, a token cannot be guessed from its hash.
func HashToken(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// Authenticate implements Authorizer. Every configured hash is compared in
// constant time, so timing reveals neither the token nor which one matched.
func (t *Tokens) Authenticate(r *http.Request) (*Scope, int, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(tok) == "" {
		return nil, http.StatusUnauthorized, errors.New("missing bearer token: send 'Authorization: Bearer <token>'")
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	var found *Scope
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].hash[:]) == 1 {
			found = &t.entries[i].scope
		}
	}
	if found == nil {
		return nil, http.StatusUnauthorized, errors.New("unknown bearer token")
	}
	return found, 0, nil
}

// AuthorizeLevel authorizes a manual level change of region: a known token
// with levels: true whose regions include region. It returns the token's
// name, recorded as who set the level, or an HTTP status and why.
func (t *Tokens) AuthorizeLevel(r *http.Request, region string) (string, int, error) {
	s, status, err := t.Authenticate(r)
	if err != nil {
		return "", status, err
	}
	if !s.Levels {
		return "", http.StatusForbidden, fmt.Errorf("token %q may not set restriction levels (levels: true in its ingest.tokens entry)", s.Name)
	}
	if len(s.Regions) > 0 && !matchAny(s.Regions, region) {
		return "", http.StatusForbidden, fmt.Errorf("token %q may not set the level of %s; allowed: %s", s.Name, region, strings.Join(s.Regions, ", "))
	}
	return "token:" + s.Name, 0, nil
}

// CheckBatch rejects the whole batch when any event is outside the scope:
// a source sending another region's data, or data of a source the token
// does not own, is misconfigured (or an attempt to write — and correct —
// another producer's events), and publishing part of its batch would hide
// that.
func (s *Scope) CheckBatch(raws [][]byte) error {
	if len(s.Types) == 0 && len(s.Regions) == 0 && len(s.Sources) == 0 {
		return nil
	}
	for i, raw := range raws {
		var v struct {
			Type   string `json:"type"`
			Region string `json:"region"`
			Source any    `json:"source"`
		}
		_ = json.Unmarshal(raw, &v) // unparsable events are rejected later with their reason
		if len(s.Sources) > 0 && v.Source != nil {
			src, _ := v.Source.(string)
			if !contains(s.Sources, src) {
				// The source is not quoted: it is the producer's text and
				// may be anything.
				return fmt.Errorf("token %q may not send events of this source (event %d); it owns: %s (sources in its ingest.tokens entry); nothing in this request was published", s.Name, i, strings.Join(s.Sources, ", "))
			}
		}
		if len(s.Types) > 0 && v.Type != "" && !contains(s.Types, v.Type) {
			return fmt.Errorf("token %q may not send %q events (event %d); allowed: %s; nothing in this request was published", s.Name, v.Type, i, strings.Join(s.Types, ", "))
		}
		if len(s.Regions) > 0 && v.Region != "" && !matchAny(s.Regions, v.Region) {
			return fmt.Errorf("token %q may not send events for region %q (event %d); allowed: %s; nothing in this request was published", s.Name, v.Region, i, strings.Join(s.Regions, ", "))
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
