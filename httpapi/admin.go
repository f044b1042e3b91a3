package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

type createAccountInput struct {
	Body struct {
		Name    string `json:"name" minLength:"1" maxLength:"200"`
		Credits int64  `json:"credits" minimum:"0" doc:"Initial credits."`
	}
}

// NewAccount is an account just created; api_key is shown only this once.
type NewAccount struct {
	ID        string    `json:"id"`
	Number    int64     `json:"number" doc:"Sequential account number (rollout cohorts use number % 100)."`
	Name      string    `json:"name"`
	APIKey    string    `json:"api_key" doc:"Shown once; only its hash is stored."`
	KeyID     string    `json:"key_id"`
	Credits   int64     `json:"credits"`
	CreatedAt time.Time `json:"created_at"`
}

type createAccountOutput struct {
	Location string `header:"Location"`
	Body     NewAccount
}

type grantInput struct {
	ID   string `path:"id"`
	Body struct {
		Amount  int64  `json:"amount" minimum:"1"`
		Reason  string `json:"reason,omitempty" maxLength:"500"`
		GrantID string `json:"grant_id,omitempty" maxLength:"200" doc:"Makes the grant idempotent: a second grant with the same id moves nothing."`
	}
}

type grantOutput struct {
	Body struct {
		AccountID string      `json:"account_id"`
		Entry     LedgerEntry `json:"entry"`
		Credits   Credits     `json:"credits"`
	}
}

func addAdminRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "create-account", Method: http.MethodPost, Path: "/v1/admin/accounts", Tags: []string{"admin"},
		Summary: "Create an account and its first API key", Security: adminSecurity, DefaultStatus: http.StatusCreated,
	}, func(ctx context.Context, in *createAccountInput) (*createAccountOutput, error) {
		acct, err := a.cfg.Backend.CreateAccount(ctx, in.Body.Name, in.Body.Credits)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		a.cfg.Log.Info("account created", "account", acct.Account.GetId(), "number", acct.Account.GetNumber(), "key_id", acct.KeyID)
		return &createAccountOutput{
			Location: "/v1/admin/accounts/" + acct.Account.GetId(),
			Body: NewAccount{
				ID: acct.Account.GetId(), Number: acct.Account.GetNumber(), Name: acct.Account.GetName(),
				APIKey: acct.APIKey, KeyID: acct.KeyID, Credits: acct.Balance.GetGranted(),
				CreatedAt: time.UnixMilli(acct.Account.GetCreatedUnixMs()).UTC(),
			},
		}, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "grant-credits", Method: http.MethodPost, Path: "/v1/admin/accounts/{id}/credits", Tags: []string{"admin"},
		Summary: "Grant credits to an account", Security: adminSecurity, Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *grantInput) (*grantOutput, error) {
		if _, err := a.cfg.Backend.Account(ctx, in.ID); err != nil {
			return nil, huma.Error404NotFound("no such account")
		}
		g, err := a.cfg.Backend.Grant(ctx, in.ID, in.Body.Amount, in.Body.Reason, in.Body.GrantID)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		out := &grantOutput{}
		out.Body.AccountID = in.ID
		out.Body.Entry = ledgerView(g.GetEntry())
		b := g.GetBalance()
		out.Body.Credits = Credits{
			Balance: b.GetGranted() - b.GetCharged(), Reserved: b.GetReserved(),
			Available: b.GetGranted() - b.GetCharged() - b.GetReserved(), Granted: b.GetGranted(), Charged: b.GetCharged(),
			Entries: []LedgerEntry{},
		}
		return out, nil
	})
}
