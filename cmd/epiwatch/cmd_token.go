package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

func newTokenCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Create ingest API tokens and the hashes the configuration stores",
		Long: `Data sources authenticate to the ingest API with a bearer token. The configuration
(ingest.tokens) stores only its SHA-256 hash, with the event types and regions the token may
send; the token itself is given to the data source once and never stored by epiwatch.`,
	}
	c.AddCommand(&cobra.Command{
		Use:   "new NAME",
		Short: "Generate a random token and print it with the configuration entry to add",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var b [32]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			tok := "ew_" + base64.RawURLEncoding.EncodeToString(b[:])
			fmt.Fprintf(cmd.OutOrStdout(), `token (give it to %[1]s once; it is not stored): %[2]s
add to ingest.tokens:
  - name: %[1]s
    sha256: %[3]s
    types: ["*"]      # or e.g. [case, lab_test]
    regions: ["*"]    # or e.g. [KZ-75]
`, args[0], tok, ingest.HashToken(tok))
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "hash [TOKEN]",
		Short: "Print the SHA-256 hash of a token (read from stdin when not given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tok string
			if len(args) == 1 {
				tok = args[0]
			} else {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return &exitError{2, fmt.Errorf("no token on stdin")}
				}
				tok = strings.TrimSpace(line)
			}
			if tok == "" {
				return &exitError{2, fmt.Errorf("empty token")}
			}
			fmt.Fprintln(cmd.OutOrStdout(), ingest.HashToken(tok))
			return nil
		},
	})
	return c
}
