package main

import (
	"crypto/rand"

	"github.com/spf13/cobra"

	"github.com/epiwatch/epiwatch/internal/tools/tokens"
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
			return tokens.New(rand.Reader, args[0], cmd.OutOrStdout())
		},
	})
	c.AddCommand(&cobra.Command{
		Use:   "hash [TOKEN]",
		Short: "Print the SHA-256 hash of a token (read from stdin when not given)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return toolExit(tokens.Hash(args[0], nil, cmd.OutOrStdout()))
			}
			return toolExit(tokens.Hash("", cmd.InOrStdin(), cmd.OutOrStdout()))
		},
	})
	return c
}
