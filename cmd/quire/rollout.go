package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/httpapi"
)

// newRolloutCmd is `quire admin rollout` (show the policy) and
// `quire admin rollout set` (change it).
func newRolloutCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Show the rollout policy (async_enabled, percentage, size_threshold_mb)",
		Long: `Show the cluster's rollout policy as the node at --url routes by.

POST /v1/process goes async when the upload is larger than size_threshold_mb
MiB, else when the account's number % 100 is below percentage, else sync.
async_enabled=false is the emergency switch: POST /v1/jobs answers 503 and
every POST /v1/process is processed synchronously.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			var out httpapi.RolloutPolicy
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/admin/rollout", nil, "", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.AddCommand(newRolloutSetCmd())
	return cmd
}

func newRolloutSetCmd() *cobra.Command {
	cf := &clientFlags{}
	var asyncEnabled bool
	var percentage, sizeMB int32
	cmd := &cobra.Command{
		Use:   "set",
		Short: "Change the rollout policy of the whole cluster (what is not given stays as it is)",
		Example: `  quire admin rollout set --percentage 30
  quire admin rollout set --async-enabled=false     # the emergency switch
  quire admin rollout set --async-enabled --size-threshold-mb 20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			if !fl.Changed("async-enabled") && !fl.Changed("percentage") && !fl.Changed("size-threshold-mb") {
				return fmt.Errorf("nothing to set: give --async-enabled, --percentage or --size-threshold-mb")
			}
			var cur httpapi.RolloutPolicy
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/admin/rollout", nil, "", &cur); err != nil {
				return err
			}
			if fl.Changed("async-enabled") {
				cur.AsyncEnabled = asyncEnabled
			}
			if fl.Changed("percentage") {
				cur.Percentage = percentage
			}
			if fl.Changed("size-threshold-mb") {
				cur.SizeThresholdMB = sizeMB
			}
			body, _ := json.Marshal(map[string]any{
				"async_enabled": cur.AsyncEnabled, "percentage": cur.Percentage, "size_threshold_mb": cur.SizeThresholdMB,
			})
			var out httpapi.RolloutPolicy
			if err := c.do(cmd.Context(), http.MethodPut, "/v1/admin/rollout", bytes.NewReader(body), "application/json", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().BoolVar(&asyncEnabled, "async-enabled", true, "false switches the async path off everywhere (POST /v1/jobs answers 503)")
	cmd.Flags().Int32Var(&percentage, "percentage", 0, "accounts whose number % 100 is below this go async (0-100)")
	cmd.Flags().Int32Var(&sizeMB, "size-threshold-mb", 0, "uploads larger than this many MiB go async whatever the percentage")
	return cmd
}

// applyAsyncEnabled writes --async-enabled (QUIRE_ASYNC_ENABLED), given at
// start, into the cluster's policy, so that every node obeys it; the rest of
// the policy stays as it is. It waits up to a minute for the ledger (its node
// may still be starting).
func applyAsyncEnabled(ctx context.Context, n *node.Node, on bool, log *slog.Logger) error {
	deadline := time.Now().Add(time.Minute)
	for {
		p, changed, err := n.SetAsyncEnabled(ctx, on)
		if err == nil {
			if changed {
				log.Info("rollout policy: async path switched by --async-enabled", "async_enabled", on, "version", p.GetVersion())
			} else {
				log.Info("rollout policy already as --async-enabled says", "async_enabled", on, "version", p.GetVersion())
			}
			return nil
		}
		if !errors.Is(err, ledger.ErrUnavailable) || time.Now().After(deadline) {
			return fmt.Errorf("--async-enabled=%t: could not write it into the rollout policy: %w", on, err)
		}
		log.Warn("--async-enabled: the ledger does not answer yet; trying again", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
