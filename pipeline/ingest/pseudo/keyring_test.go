package pseudo_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/epiwatch/epiwatch/pipeline/ingest/pseudo"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNewKeys(t *testing.T) {
	raw, _ := hex.DecodeString(hexKey1)
	b64 := base64.StdEncoding.EncodeToString(raw)
	want := apply(t, k1(t), caseEvent("KZ-75", iinMale)).Person.Pseudonym
	const passphrase = "a long enough passphrase, 36 bytes!"
	for _, tc := range []struct {
		name    string
		active  pseudo.KeyConfig
		retired []pseudo.KeyConfig
		same    bool   // pseudonyms equal those of hexKey1
		err     string // substring of the error; "" = success
		errIs   error
	}{
		{name: "hex", active: pseudo.KeyConfig{ID: "k1", Key: hexKey1}, same: true},
		{name: "upper-case hex with a newline", active: pseudo.KeyConfig{ID: "k1", Key: strings.ToUpper(hexKey1) + "\n"}, same: true},
		{name: "base64", active: pseudo.KeyConfig{ID: "k1", Key: b64}, same: true},
		{name: "key file, trimmed", active: pseudo.KeyConfig{ID: "k1", KeyFile: writeFile(t, "  "+hexKey1+"\n\n")}, same: true},
		{name: "raw passphrase", active: pseudo.KeyConfig{ID: "k1", Key: passphrase + "x"}},
		{name: "missing", active: pseudo.KeyConfig{ID: "k1"}, err: `active key "k1": no key configured`, errIs: pseudo.ErrNoKey},
		{name: "too short", active: pseudo.KeyConfig{ID: "k1", Key: "CHANGE-ME"}, err: `active key "k1": key is too short: 9 characters`},
		{name: "short hex", active: pseudo.KeyConfig{ID: "k1", Key: "0011223344556677"}, err: "too short"},
		{name: "short key file", active: pseudo.KeyConfig{ID: "k7", KeyFile: writeFile(t, "CHANGE-ME\n")}, err: `active key "k7": key_file`},
		{name: "missing key file", active: pseudo.KeyConfig{ID: "k1", KeyFile: "/nonexistent/key"}, err: "read key_file"},
		{name: "both", active: pseudo.KeyConfig{ID: "k1", Key: hexKey1, KeyFile: "/x"}, err: "both key and key_file"},
		{name: "bad id", active: pseudo.KeyConfig{ID: "k 1", Key: hexKey1}, err: "key id"},
		{name: "empty id", active: pseudo.KeyConfig{Key: hexKey1}, err: "key id"},
		{name: "retired too short", active: pseudo.KeyConfig{ID: "k2", Key: hexKey2}, retired: []pseudo.KeyConfig{{ID: "k1", Key: "tiny-k3y"}}, err: `retired key "k1": key is too short`},
		{name: "retired id reused", active: pseudo.KeyConfig{ID: "k1", Key: hexKey1}, retired: []pseudo.KeyConfig{{ID: "k1", Key: hexKey2}}, err: "used twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pseudo.New(tc.active, tc.retired, nil, fixedNow)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want …%s…", err, tc.err)
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Fatalf("err = %v, want errors.Is %v", err, tc.errIs)
				}
				for _, secret := range []string{"CHANGE-ME", "tiny-k3y", "0011223344556677", hexKey1, hexKey2} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error %q contains the key", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := apply(t, p, caseEvent("KZ-75", iinMale)).Person.Pseudonym
			if (got == want) != tc.same {
				t.Fatalf("pseudonym %s, hexKey1 gives %s, want same=%v", got, want, tc.same)
			}
		})
	}
}

func TestKeyringNeverPrintsSecrets(t *testing.T) {
	raw := "a raw passphrase that is long enough to be a key"
	p := newPseudo(t, pseudo.KeyConfig{ID: "k2", Key: raw}, pseudo.KeyConfig{ID: "k1", Key: hexKey1})
	kr := p.Keyring()
	out := fmt.Sprintf("%v %+v %#v %s %x %v %+v %#v", kr, kr, kr, kr, kr, p, p, *p)
	secret, _ := hex.DecodeString(hexKey1)
	for _, s := range []string{raw, hexKey1, string(secret), fmt.Sprint([]byte(raw)[:8])} {
		if strings.Contains(out, s) {
			t.Fatalf("formatted key ring leaks a key: %s", out)
		}
	}
	if kr.ActiveID() != "k2" || strings.Join(kr.IDs(), ",") != "k1,k2" || !kr.Known("k1") || kr.Known("k3") {
		t.Fatalf("key ring: %v", kr)
	}
	if f := kr.Fingerprint("k1"); len(f) != 16 || f == kr.Fingerprint("k2") || kr.Fingerprint("k3") != "" {
		t.Fatalf("fingerprints: %q %q", f, kr.Fingerprint("k2"))
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "sub")
	path := filepath.Join(dir, "pseudonym.key")

	key, created, err := pseudo.LoadOrCreateKeyFile(path)
	if err != nil || !created || len(key) != pseudo.MinKeyBytes {
		t.Fatalf("create: %d bytes, created %v, %v", len(key), created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}

	again, created, err := pseudo.LoadOrCreateKeyFile(path)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("reload: created %v, same %v, %v", created, bytes.Equal(again, key), err)
	}

	// The file is what KeyFile and Key read: the same key, the same pseudonyms.
	fromFile := apply(t, newPseudo(t, pseudo.KeyConfig{ID: "k1", KeyFile: path}), caseEvent("KZ-75", iinMale)).Person.Pseudonym
	fromEnv := apply(t, newPseudo(t, pseudo.KeyConfig{ID: "k1", Key: hex.EncodeToString(key)}), caseEvent("KZ-75", iinMale)).Person.Pseudonym
	if fromFile != fromEnv {
		t.Fatal("key_file and the same key as hex give different pseudonyms")
	}

	bad := writeFile(t, "CHANGE-ME")
	if _, _, err := pseudo.LoadOrCreateKeyFile(bad); err == nil || strings.Contains(err.Error(), "CHANGE-ME") || !strings.Contains(err.Error(), bad) {
		t.Fatalf("short existing file: %v", err)
	}
}

// Processes starting together end up with one key.
func TestLoadOrCreateKeyFileRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pseudonym.key")
	const n = 16
	keys := make([][]byte, n)
	created := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			keys[i], created[i], err = pseudo.LoadOrCreateKeyFile(path)
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	nc := 0
	for i := range n {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatal("processes got different keys")
		}
		if created[i] {
			nc++
		}
	}
	if nc != 1 {
		t.Fatalf("%d callers report creating the key, want 1", nc)
	}
}
