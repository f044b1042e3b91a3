package main

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"
)

// newAccountsCmd is `quire admin accounts`: one page of the accounts, by
// number, as JSON; --cursor takes the next_cursor of the page before.
func newAccountsCmd() *cobra.Command {
	cf := &clientFlags{}
	var cursor string
	var limit int
	cmd := &cobra.Command{
		Use: "accounts", Short: "List the accounts (id, number, name, balance), by number, a page at a time", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, cf, "QUIRE_ADMIN_TOKEN")
			if err != nil {
				return err
			}
			q := url.Values{}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			if limit > 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			path := "/v1/admin/accounts"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			var out map[string]any
			if err := c.do(cmd.Context(), http.MethodGet, path, nil, "", &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	cmd.Flags().StringVar(&cursor, "cursor", "", "next_cursor of the previous page")
	cmd.Flags().IntVar(&limit, "limit", 0, "accounts per page (server default 50, at most 200)")
	addClientFlags(cmd.Flags(), cf)
	return cmd
}
