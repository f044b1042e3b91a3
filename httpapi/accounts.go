package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// AccountSummary is one account of the admin list.
type AccountSummary struct {
	ID        string    `json:"id"`
	Number    int64     `json:"number" doc:"Sequential account number; every admin path takes it in place of the id."`
	Name      string    `json:"name"`
	Balance   int64     `json:"balance" doc:"Credits granted minus credits charged."`
	CreatedAt time.Time `json:"created_at"`
}

type listAccountsInput struct {
	Cursor string `query:"cursor" doc:"next_cursor of the previous page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"50"`
}

type listAccountsOutput struct {
	Body struct {
		Accounts   []AccountSummary `json:"accounts"`
		NextCursor string           `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
	}
}

// addAccountListRoute registers GET /v1/admin/accounts: every account by
// number, a page at a time. The cursor is the last number of the page.
func addAccountListRoute(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "list-accounts", Method: http.MethodGet, Path: "/v1/admin/accounts", Tags: []string{"admin"},
		Summary:     "List the accounts, by number",
		Description: "Cursor-paginated: pass next_cursor as cursor for the next page; the last page has no next_cursor.",
		Security:    adminSecurity, Errors: []int{401, 422},
	}, func(ctx context.Context, in *listAccountsInput) (*listAccountsOutput, error) {
		var after int64
		if in.Cursor != "" {
			n, err := strconv.ParseInt(in.Cursor, 10, 64)
			if err != nil || n < 0 {
				return nil, huma.Error422UnprocessableEntity("cursor is not a next_cursor of this list")
			}
			after = n
		}
		list, err := a.cfg.Backend.Accounts(ctx, after, in.Limit)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		out := &listAccountsOutput{}
		out.Body.Accounts = make([]AccountSummary, 0, len(list.GetAccounts()))
		for i, acct := range list.GetAccounts() {
			s := AccountSummary{
				ID: acct.GetId(), Number: acct.GetNumber(), Name: acct.GetName(),
				CreatedAt: time.UnixMilli(acct.GetCreatedUnixMs()).UTC(),
			}
			if i < len(list.GetBalances()) {
				b := list.GetBalances()[i]
				s.Balance = b.GetGranted() - b.GetCharged()
			}
			out.Body.Accounts = append(out.Body.Accounts, s)
		}
		if list.GetMore() && len(out.Body.Accounts) > 0 {
			out.Body.NextCursor = strconv.FormatInt(out.Body.Accounts[len(out.Body.Accounts)-1].Number, 10)
		}
		return out, nil
	})
}

// accountID turns an admin path's account reference, its id or its number,
// into the account's id; an unknown number is 404.
func (a *API) accountID(ctx context.Context, ref string) (string, error) {
	if ref == "" || strings.Trim(ref, "0123456789") != "" {
		return ref, nil
	}
	acct, err := a.cfg.Backend.Account(ctx, ref)
	if err != nil {
		return "", huma.Error404NotFound("no such account")
	}
	return acct.GetId(), nil
}
