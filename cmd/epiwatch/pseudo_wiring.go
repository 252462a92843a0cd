package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
)

// generatedKeyFile is where a quick start keeps its generated pseudonym key,
// under data_dir.
const generatedKeyFile = "pseudonym.key"

const howToSetKey = "set pseudonym.key (or EPIWATCH_PSEUDONYM_KEY) to at least 32 random bytes, e.g. `openssl rand -hex 32`, " +
	"or pseudonym.key_file to a file holding one; keep it safe: every pseudonym depends on it"

// newPseudonymizer builds the key ring from pseudonym.*. Without a configured
// key, a single-node setup (embedded NATS, nats.url empty) generates one
// once into <data_dir>/pseudonym.key so the quick start needs no
// configuration; `ingest` and `import` next to a running `run` find the same
// file. With nats.url set other ingest processes may be running elsewhere,
// each of which would generate a different key and split every person into
// several pseudonyms, so there a key must be configured.
func (a *app) newPseudonymizer() (ingest.Pseudonymizer, error) {
	c := a.cfg.Pseudonym
	active := pseudo.KeyConfig{ID: c.KeyID, Key: c.Key, KeyFile: c.KeyFile}
	generated, fresh := false, false
	if c.Key == "" && c.KeyFile == "" {
		if a.cfg.NATS.URL != "" {
			return nil, &exitError{2, fmt.Errorf("pseudonym key %q: not configured, and with nats.url set ingest must share one key with every other process: %s", c.KeyID, howToSetKey)}
		}
		active.KeyFile = filepath.Join(a.cfg.DataDir, generatedKeyFile)
		_, created, err := pseudo.LoadOrCreateKeyFile(active.KeyFile)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("pseudonym key %q: none configured and a generated one is unusable (%w); %s", c.KeyID, err, howToSetKey)}
		}
		generated, fresh = true, created
	}
	retired := make([]pseudo.KeyConfig, len(c.Retired))
	for i, r := range c.Retired {
		retired[i] = pseudo.KeyConfig{ID: r.ID, Key: r.Key, KeyFile: r.KeyFile}
	}
	regions := a.regions
	p, err := pseudo.New(active, retired, regions, time.Now)
	if err != nil {
		if errors.Is(err, pseudo.ErrNoKey) { // the active key has one by now: a retired entry lacks it
			err = fmt.Errorf("%w; each entry of pseudonym.retired needs the key or key_file it had when active", err)
		}
		return nil, &exitError{2, err}
	}
	kr := p.Keyring()
	if generated {
		a.log.Warn("no pseudonym key configured: using a generated one; fine for a single-node trial, "+
			"but back the file up (pseudonyms cannot be matched without it) and configure pseudonym.key for production",
			"key_id", kr.ActiveID(), "key_file", active.KeyFile, "created_now", fresh, "fingerprint", kr.Fingerprint(kr.ActiveID()))
	}
	a.log.Info("pseudonym key ring loaded", "active", kr.ActiveID(), "fingerprint", kr.Fingerprint(kr.ActiveID()),
		"keys", strings.Join(kr.IDs(), ","))
	return p, nil
}
