// Package tokens is `epiwatch token`: it makes ingest API tokens and the
// SHA-256 hashes the configuration stores (ingest.tokens), so that the
// token itself is given to a data source once and never stored.
package tokens

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

// Prefix starts every token this package makes, so that one pasted
// somewhere it does not belong is recognisable.
const Prefix = "ew_"

// New reads 32 random bytes from random (crypto/rand.Reader), and prints
// the token for the data source called name with the configuration entry
// that admits it. sources are the event sources the token may publish
// (the events' source field); none: name is its only source.
func New(random io.Reader, name string, sources []string, stdout io.Writer) error {
	if strings.TrimSpace(name) == "" {
		return cli.BadInputf("empty token name")
	}
	for _, s := range sources {
		if strings.TrimSpace(s) == "" || strings.TrimSpace(s) != s || strings.ContainsAny(s, "\"\n") {
			return cli.BadInputf("--source %q is not a source name (the events' source field, no blanks around it)", s)
		}
	}
	var b [32]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return fmt.Errorf("read random bytes for a token: %w", err)
	}
	tok := Prefix + base64.RawURLEncoding.EncodeToString(b[:])
	src := fmt.Sprintf("[%q]      # the only source it may publish (its name: --source to change)", name)
	if len(sources) > 0 {
		q := make([]string, len(sources))
		for i, s := range sources {
			q[i] = fmt.Sprintf("%q", s)
		}
		src = "[" + strings.Join(q, ", ") + "]      # the sources it may publish (the events' source field)"
	}
	_, err := fmt.Fprintf(stdout, `token (give it to %[1]s once; it is not stored): %[2]s
add to ingest.tokens:
  - name: %[1]s
    sha256: %[3]s
    sources: %[4]s
    types: ["*"]      # or e.g. [case, lab_test]
    regions: ["*"]    # or e.g. [KZ-75]
`, name, tok, ingest.HashToken(tok), src)
	return err
}

// Hash prints the hash of token, or, when stdin is not nil, of the first
// line read from it instead (which keeps the token out of the shell's
// history).
func Hash(token string, stdin io.Reader, stdout io.Writer) error {
	if stdin != nil {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && line == "" {
			return cli.BadInputf("no token on stdin")
		}
		token = strings.TrimSpace(line)
	}
	if token == "" {
		return cli.BadInputf("empty token")
	}
	_, err := fmt.Fprintln(stdout, ingest.HashToken(token))
	return err
}
