package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/cluster"
)

// newKeygenCmd is `quire keygen`: a new gossip encryption key on stdout.
func newKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen",
		Short: "Print a new random gossip encryption key (for --gossip-key-file)",
		Long: `Print a new random 32-byte gossip encryption key, base64, and nothing else.

Save it in a file and give every node of the cluster --gossip-key-file FILE:
gossip is then encrypted and authenticated (AES-256-GCM), and a process
without the key cannot join. The file may hold several keys, one per line:
the first encrypts, all decrypt (README: rotating the gossip key).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), cluster.NewGossipKey())
			return err
		},
	}
}
