package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
)

// GeneratedKeyFile is where a quick start keeps its generated pseudonym key,
// under data_dir.
const GeneratedKeyFile = "pseudonym.key"

const howToSetKey = "set pseudonym.key (or EPIWATCH_PSEUDONYM_KEY) to at least 32 random bytes, e.g. `openssl rand -hex 32`, " +
	"or pseudonym.key_file to a file holding one; keep it safe: every pseudonym depends on it"

// newPseudonymizer builds the key ring from pseudonym.*. Without a configured
// key, a single-node setup (embedded NATS, nats.url empty) generates one
// once into <data_dir>/pseudonym.key so the quick start needs no
// configuration; `ingest` and `import` next to a running `run` find the same
// file. With nats.url set other ingest processes may be running elsewhere,
// each of which would generate a different key and split every person into
// several pseudonyms, so there a key must be configured.
//
// Every key's fingerprint is then checked against the one the deployment
// registered for its id (ingest.VerifyKeys): a process whose key differs —
// `import` run from another directory, which generated a key of its own —
// refuses to start instead of splitting persons into two pseudonyms.
func (a *App) newPseudonymizer(ctx context.Context) (ingest.Pseudonymizer, error) {
	c := a.Cfg.Pseudonym
	active := pseudo.KeyConfig{ID: c.KeyID, Key: c.Key, KeyFile: c.KeyFile}
	generated, fresh := false, false
	if c.Key == "" && c.KeyFile == "" {
		if a.Cfg.NATS.URL != "" {
			return nil, usage(fmt.Errorf("pseudonym key %q: not configured, and with nats.url set ingest must share one key with every other process: %s", c.KeyID, howToSetKey))
		}
		active.KeyFile = filepath.Join(a.Cfg.DataDir, GeneratedKeyFile)
		_, created, err := pseudo.LoadOrCreateKeyFile(active.KeyFile)
		if err != nil {
			return nil, usage(fmt.Errorf("pseudonym key %q: none configured and a generated one is unusable (%w); %s", c.KeyID, err, howToSetKey))
		}
		generated, fresh = true, created
	}
	retired := make([]pseudo.KeyConfig, len(c.Retired))
	for i, r := range c.Retired {
		retired[i] = pseudo.KeyConfig{ID: r.ID, Key: r.Key, KeyFile: r.KeyFile}
	}
	regions := a.Regions
	p, err := pseudo.New(active, retired, regions, time.Now)
	if err != nil {
		if errors.Is(err, pseudo.ErrNoKey) { // the active key has one by now: a retired entry lacks it
			err = fmt.Errorf("%w; each entry of pseudonym.retired needs the key or key_file it had when active", err)
		}
		return nil, usage(err)
	}
	kr := p.Keyring()
	if generated {
		a.Log.Warn("no pseudonym key configured: using a generated one; fine for a single-node trial, "+
			"but back the file up (pseudonyms cannot be matched without it) and configure pseudonym.key for production",
			"key_id", kr.ActiveID(), "key_file", active.KeyFile, "created_now", fresh, "fingerprint", kr.Fingerprint(kr.ActiveID()))
	}
	if err := ingest.VerifyKeys(ctx, a.bus, a.keyFingerprints(kr, active, retired)); err != nil {
		var mm *ingest.KeyMismatchError
		if !errors.As(err, &mm) {
			return nil, err
		}
		if fresh {
			// Generated a moment ago and never used: leave no second key
			// behind for the next run in this directory to pick up.
			_ = os.Remove(active.KeyFile)
			err = fmt.Errorf("%w (this process found no key configured and generated one in %s, now removed)", err, active.KeyFile)
		}
		return nil, usage(err)
	}
	a.Log.Info("pseudonym key ring loaded", "active", kr.ActiveID(), "fingerprint", kr.Fingerprint(kr.ActiveID()),
		"keys", strings.Join(kr.IDs(), ","))
	return p, nil
}

// keyFingerprints describes every key of the ring for ingest.VerifyKeys.
func (a *App) keyFingerprints(kr *pseudo.Keyring, active pseudo.KeyConfig, retired []pseudo.KeyConfig) []ingest.KeyFingerprint {
	host, _ := os.Hostname()
	process := "epiwatch"
	if len(os.Args) > 1 {
		process += " " + os.Args[1]
	}
	var out []ingest.KeyFingerprint
	for _, kc := range append([]pseudo.KeyConfig{active}, retired...) {
		origin := "pseudonym.key (configuration or EPIWATCH_PSEUDONYM_KEY)"
		if kc.KeyFile != "" {
			origin = kc.KeyFile
			if abs, err := filepath.Abs(kc.KeyFile); err == nil {
				origin = abs
			}
		}
		out = append(out, ingest.KeyFingerprint{KeyID: kc.ID, Fingerprint: kr.Fingerprint(kc.ID), Origin: origin, Host: host, Process: process})
	}
	return out
}
