package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/quirehq/quire/httpapi"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Admin operations (need QUIRE_ADMIN_TOKEN)"}
	cmd.AddCommand(newCreateAccountCmd(), newGrantCmd())
	cmd.AddCommand(newCreateKeyCmd(), newRevokeKeyCmd(), newKeysCmd())
	cmd.AddCommand(newRolloutCmd()) // rollout.go
	cmd.AddCommand(newAccountsCmd())
	return cmd
}

func newCreateAccountCmd() *cobra.Command {
	cf := &clientFlags{}
	var name string
	var credits int64
	cmd := &cobra.Command{
		Use: "create-account", Short: "Create an account; prints its API key once", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]any{"name": name, "credits": credits})
			var out httpapi.NewAccount
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/admin/accounts", bytes.NewReader(body), "application/json", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().StringVar(&name, "name", "", "the account's name")
	cmd.Flags().Int64Var(&credits, "credits", 0, "initial credits")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func newGrantCmd() *cobra.Command {
	cf := &clientFlags{}
	var amount int64
	var reason string
	cmd := &cobra.Command{
		Use: "grant ACCOUNT", Short: "Grant credits to an account (its id or number)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			if amount < 1 {
				return fmt.Errorf("--amount must be at least 1")
			}
			body, _ := json.Marshal(map[string]any{"amount": amount, "reason": reason})
			var out map[string]any
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/admin/accounts/"+args[0]+"/credits", bytes.NewReader(body), "application/json", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().Int64Var(&amount, "amount", 0, "credits to grant")
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the ledger)")
	return cmd
}

func newCreateKeyCmd() *cobra.Command {
	cf := &clientFlags{}
	var revokeOthers bool
	cmd := &cobra.Command{
		Use: "create-key ACCOUNT", Short: "Create an API key for an account (its id or number); prints it once", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]any{"revoke_others": revokeOthers})
			var out httpapi.NewAPIKey
			if err := c.do(cmd.Context(), http.MethodPost, keysPath(args[0]), bytes.NewReader(body), "application/json", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	cmd.Flags().BoolVar(&revokeOthers, "revoke-others", false, "also revoke every other key of the account (rotation)")
	return cmd
}

func newRevokeKeyCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use: "revoke-key ACCOUNT KEY_ID", Short: "Revoke an API key of an account (its id or number)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, keysPath(args[0])+"/"+url.PathEscape(args[1]), nil, "", nil); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "revoked %s of %s\n", args[1], args[0])
			return err
		},
	}
	addClientFlags(cmd.Flags(), cf)
	return cmd
}

func newKeysCmd() *cobra.Command {
	cf := &clientFlags{}
	cmd := &cobra.Command{
		Use: "keys ACCOUNT", Short: "List an account's API keys (ids and dates, never the keys); ACCOUNT is its id or number", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(cmd.Context(), http.MethodGet, keysPath(args[0]), nil, "", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	addClientFlags(cmd.Flags(), cf)
	return cmd
}

func keysPath(account string) string {
	return "/v1/admin/accounts/" + url.PathEscape(account) + "/keys"
}
