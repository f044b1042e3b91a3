package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/messages"
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
		acct, err := a.cfg.Backend.Account(ctx, in.ID)
		if err != nil {
			return nil, huma.Error404NotFound("no such account")
		}
		in.ID = acct.GetId()
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

	addLimitRoutes(a)
	addAccountListRoute(a)
}

// AccountLimits are an account's own limits; 0 takes the node's default.
type AccountLimits struct {
	RequestsPerSecond float64 `json:"requests_per_second" required:"false" minimum:"0" doc:"Token bucket rate of the account's requests, per node (0: the node's --rate-limit-rps)."`
	Burst             int32   `json:"burst" required:"false" minimum:"0" doc:"Token bucket size, per node (0: the node's --rate-limit-burst)."`
	MaxActiveJobs     int32   `json:"max_active_jobs" required:"false" minimum:"0" doc:"Most unfinished jobs at once, cluster-wide (0: the node's --max-active-jobs)."`
}

type setLimitsInput struct {
	ID   string `path:"id"`
	Body AccountLimits
}

type limitsOutput struct {
	Body struct {
		AccountID string        `json:"account_id"`
		Limits    AccountLimits `json:"limits"`
	}
}

func addLimitRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "set-account-limits", Method: http.MethodPut, Path: "/v1/admin/accounts/{id}/limits", Tags: []string{"admin"},
		Summary:     "Replace an account's own limits",
		Description: "Rate limits are per node (N nodes behind a balancer let an account through at up to N times its rate); max_active_jobs holds for the whole cluster. A zero field takes the node's default. Every node applies the new limits from the account's next request.",
		Security:    adminSecurity, Errors: []int{401, 404, 422, 503},
	}, func(ctx context.Context, in *setLimitsInput) (*limitsOutput, error) {
		id, err := a.accountID(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		acct, err := a.cfg.Backend.SetLimits(ctx, id, &messages.AccountLimits{
			RequestsPerSecond: in.Body.RequestsPerSecond, Burst: in.Body.Burst, MaxActiveJobs: in.Body.MaxActiveJobs,
		})
		if errors.Is(err, ledger.ErrUnknownAccount) {
			return nil, huma.Error404NotFound("no such account")
		}
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		l := acct.GetLimits()
		a.cfg.Log.Info("account limits set", "account", acct.GetId(), "requests_per_second", l.GetRequestsPerSecond(),
			"burst", l.GetBurst(), "max_active_jobs", l.GetMaxActiveJobs())
		out := &limitsOutput{}
		out.Body.AccountID = acct.GetId()
		out.Body.Limits = AccountLimits{RequestsPerSecond: l.GetRequestsPerSecond(), Burst: l.GetBurst(), MaxActiveJobs: l.GetMaxActiveJobs()}
		return out, nil
	})
}
