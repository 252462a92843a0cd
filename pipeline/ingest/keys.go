package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/stream"
	"github.com/epiwatch/epiwatch/schemas"
)

// KeyFingerprint identifies one pseudonym key without disclosing it, and
// says where it came from so a mismatch can name both key files.
type KeyFingerprint struct {
	KeyID       string `json:"key_id"`
	Fingerprint string `json:"fingerprint"`
	// Origin is where the key was read from: a key file's absolute path, or
	// "pseudonym.key (configuration or EPIWATCH_PSEUDONYM_KEY)".
	Origin string `json:"origin"`
	// Host and Process name the process that registered it.
	Host         string    `json:"host"`
	Process      string    `json:"process"`
	RegisteredAt time.Time `json:"registered_at"`
}

// KeyMismatchError means a key id is registered with another key's
// fingerprint: publishing with this key would give the same person a
// second pseudonym under the same key id.
type KeyMismatchError struct {
	Ours, Registered KeyFingerprint
}

func (e *KeyMismatchError) Error() string {
	r := e.Registered
	return fmt.Sprintf("pseudonym key %q of this process (fingerprint %s, from %s) is not the key the pipeline already uses under that id "+
		"(fingerprint %s, from %s on %s, registered by %s at %s): publishing would give the same person two pseudonyms. "+
		"Use the pipeline's key: point pseudonym.key_file (EPIWATCH_PSEUDONYM_KEY_FILE) at %s, or --data-dir at the folder holding it, "+
		"or set pseudonym.key to the same secret; a genuinely new key needs a new pseudonym.key_id (see the README on key rotation)",
		e.Ours.KeyID, e.Ours.Fingerprint, e.Ours.Origin,
		r.Fingerprint, r.Origin, r.Host, r.Process, r.RegisteredAt.Format(time.RFC3339), r.Origin)
}

// VerifyKeys makes sure every key of this process is the one the deployment
// uses under its id. The first process to present a key id registers its
// fingerprint in schemas.BucketPseudonymKeys (create-if-absent, so two
// processes starting together agree on one); every later process must
// present the same fingerprint. It returns a *KeyMismatchError for the
// first key that differs, before anything is published.
func VerifyKeys(ctx context.Context, bus *stream.Bus, keys []KeyFingerprint) error {
	kv, err := bus.KV(ctx, schemas.BucketPseudonymKeys)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.RegisteredAt.IsZero() {
			k.RegisteredAt = time.Now().UTC()
		}
		val, err := json.Marshal(k)
		if err != nil {
			return fmt.Errorf("encode fingerprint of pseudonym key %q: %w", k.KeyID, err)
		}
		_, err = kv.Create(ctx, k.KeyID, val)
		if err == nil {
			continue
		}
		if !errors.Is(err, stream.ErrKeyExists) {
			return fmt.Errorf("register pseudonym key %q in %s: %w", k.KeyID, schemas.BucketPseudonymKeys, err)
		}
		e, err := kv.Get(ctx, k.KeyID)
		if err != nil {
			return fmt.Errorf("read the registered pseudonym key %q from %s: %w", k.KeyID, schemas.BucketPseudonymKeys, err)
		}
		var reg KeyFingerprint
		if err := json.Unmarshal(e.Value, &reg); err != nil {
			return fmt.Errorf("registered pseudonym key %q in %s: %w", k.KeyID, schemas.BucketPseudonymKeys, err)
		}
		if !strings.EqualFold(reg.Fingerprint, k.Fingerprint) {
			return &KeyMismatchError{Ours: k, Registered: reg}
		}
	}
	return nil
}
