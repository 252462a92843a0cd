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
(ingest.tokens) stores only its SHA-256 hash, with the sources, event types and regions the token
may send; the token itself is given to the data source once and never stored by epiwatch.`,
	}
	var sources []string
	newCmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Generate a random token and print it with the configuration entry to add",
		Long: `Generate a random token for the data source NAME and print it with the ingest.tokens entry
to add. A token may publish only events whose source field it owns: the --source values
(repeatable), or NAME alone without --source. Event ids are scoped to their source, so a
producer's ids never collide with another's, and a token can never write, supersede or retract
another source's events.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return toolExit(tokens.New(rand.Reader, args[0], sources, cmd.OutOrStdout()))
		},
	}
	newCmd.Flags().StringArrayVar(&sources, "source", nil, "an event source the token may publish (repeatable; default: NAME)")
	c.AddCommand(newCmd)
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
