package pseudo

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// MinKeyBytes is the shortest HMAC key accepted: 256 bits, the output size
// of SHA-256 (RFC 2104 §3: shorter keys weaken the MAC). A national ID has
// only ~2·10⁹ plausible values, so the key's secrecy is all that stops a
// brute-force reversal of the pseudonyms.
const MinKeyBytes = 32

// KeyConfig is one key of the ring as configuration gives it: exactly one of
// Key (the secret itself) or KeyFile (a file holding it; surrounding white
// space is trimmed).
//
// The secret is read as hex if it is entirely hex digits and decodes to at
// least MinKeyBytes (what `openssl rand -hex 32` prints), else as standard
// padded base64 if that decodes to at least MinKeyBytes (`openssl rand
// -base64 32`), else as the raw string, which must then be at least
// MinKeyBytes long. The first reading that yields enough bytes wins; the
// order is fixed because every pseudonym depends on the exact key bytes.
type KeyConfig struct {
	ID      string
	Key     string
	KeyFile string
}

// keyIDPattern bounds key ids: they are stored beside every pseudonym
// (ClickHouse key_id) and appear in logs.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// Keyring is the set of HMAC keys: the active one pseudonymises new events,
// retired ones still resolve pseudonyms written before a rotation (a
// pseudonym is only meaningful together with its key id). It is safe for
// concurrent use and never prints its secrets.
type Keyring struct {
	active string
	keys   map[string]*key
}

type key struct {
	id     string
	secret []byte
	macs   sync.Pool // of *mac; hmac.New precomputes the padded key, worth reusing
}

type mac struct {
	h   hash.Hash
	in  [32]byte // country ":" id fits: 2 + 1 + 14 bytes
	sum [sha256.Size]byte
	hex [2 * sha256.Size]byte
}

// NewKeyring loads the active key and the retired ones. Errors name the key
// id and what is wrong, never the secret.
func NewKeyring(active KeyConfig, retired []KeyConfig) (*Keyring, error) {
	kr := &Keyring{active: active.ID, keys: make(map[string]*key, 1+len(retired))}
	add := func(kc KeyConfig, role string) error {
		if !keyIDPattern.MatchString(kc.ID) {
			return fmt.Errorf("%s key id %q: want 1–32 letters, digits, '.', '_' or '-'", role, kc.ID)
		}
		if _, dup := kr.keys[kc.ID]; dup {
			return fmt.Errorf("%s key %q: key id used twice in the key ring", role, kc.ID)
		}
		secret, err := loadKey(kc)
		if err != nil {
			return fmt.Errorf("%s key %q: %w", role, kc.ID, err)
		}
		kr.keys[kc.ID] = &key{id: kc.ID, secret: secret}
		return nil
	}
	if err := add(active, "active"); err != nil {
		return nil, err
	}
	for _, kc := range retired {
		if err := add(kc, "retired"); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

// ErrNoKey means a KeyConfig has neither Key nor KeyFile.
var ErrNoKey = errors.New("no key configured (neither key nor key_file is set)")

func loadKey(kc KeyConfig) ([]byte, error) {
	switch {
	case kc.Key != "" && kc.KeyFile != "":
		return nil, errors.New("both key and key_file are set; set one")
	case kc.KeyFile != "":
		b, err := os.ReadFile(kc.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("read key_file: %w", err) // *PathError: the path, not the content
		}
		k, err := decodeKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("key_file %s: %w", kc.KeyFile, err)
		}
		return k, nil
	case kc.Key != "":
		return decodeKey(kc.Key)
	}
	return nil, ErrNoKey
}

// decodeKey applies the reading order documented on KeyConfig. Its errors
// give lengths only.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("key is empty")
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) >= MinKeyBytes {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) >= MinKeyBytes {
		return b, nil
	}
	if len(s) >= MinKeyBytes {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("key is too short: %d characters; want at least %d random bytes, e.g. the output of `openssl rand -hex %d`", len(s), MinKeyBytes, MinKeyBytes)
}

// ActiveID is the id of the key new pseudonyms are made with.
func (kr *Keyring) ActiveID() string { return kr.active }

// Known reports whether id names a key of the ring.
func (kr *Keyring) Known(id string) bool { _, ok := kr.keys[id]; return ok }

// IDs returns every key id, sorted.
func (kr *Keyring) IDs() []string {
	ids := make([]string, 0, len(kr.keys))
	for id := range kr.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Fingerprint identifies a key's bytes without disclosing them (the first
// 8 bytes of a domain-separated SHA-256, hex), so logs can show that the key
// behind an id changed. Empty for an unknown id.
func (kr *Keyring) Fingerprint(id string) string {
	k, ok := kr.keys[id]
	if !ok {
		return ""
	}
	h := sha256.New()
	h.Write([]byte("epiwatch pseudonym key fingerprint\x00"))
	h.Write(k.secret)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// String and GoString keep secrets out of logs and %v/%#v dumps.
func (kr *Keyring) String() string {
	return fmt.Sprintf("pseudo.Keyring{active: %s, keys: %s}", kr.active, strings.Join(kr.IDs(), ","))
}

// GoString is String.
func (kr *Keyring) GoString() string { return kr.String() }

// sum is HMAC-SHA256(key, country ":" id) as 64 lowercase hex characters.
func (k *key) sum(country, id string) string {
	m, _ := k.macs.Get().(*mac)
	if m == nil {
		m = &mac{h: hmac.New(sha256.New, k.secret)}
	}
	m.h.Reset()
	if l := len(country) + 1 + len(id); l <= len(m.in) {
		n := copy(m.in[:], country)
		m.in[n] = ':'
		copy(m.in[n+1:], id)
		m.h.Write(m.in[:l])
	} else { // longer than any valid ID: never on the hot path
		m.h.Write([]byte(country + ":" + id))
	}
	hex.Encode(m.hex[:], m.h.Sum(m.sum[:0]))
	s := string(m.hex[:]) // the only allocation
	clear(m.in[:])
	k.macs.Put(m)
	return s
}

// LoadOrCreateKeyFile returns the key in path, creating the file with a new
// random key (MinKeyBytes, written as hex, mode 0600, parent directories
// 0700) when it does not exist; created reports that it did. It lets a
// single-node quick start run without configuration; a deployment with
// several ingest processes must configure one shared key instead.
//
// Creation is atomic (a complete temporary file is hard-linked into place),
// so processes starting together agree on one key and none reads a partial
// file.
func LoadOrCreateKeyFile(path string) (secret []byte, created bool, err error) {
	if k, err := readKeyFile(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create key directory: %w", err)
	}
	secret = make([]byte, MinKeyBytes)
	if _, err := rand.Read(secret); err != nil {
		return nil, false, fmt.Errorf("generate pseudonym key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".pseudonym-key-*") // mode 0600
	if err != nil {
		return nil, false, fmt.Errorf("create key file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(hex.EncodeToString(secret) + "\n")
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return nil, false, fmt.Errorf("write key file %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) { // another process won the race: use its key
			k, err := readKeyFile(path)
			return k, false, err
		}
		return nil, false, fmt.Errorf("install key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // persist the new directory entry
		_ = d.Sync()
		_ = d.Close()
	}
	return secret, true, nil
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	k, err := decodeKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}
