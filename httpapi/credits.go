package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

type creditsInput struct {
	Recent int `query:"recent" minimum:"0" maximum:"500" default:"20" doc:"How many recent ledger entries to include."`
}

type creditsOutput struct {
	Body Credits
}

func addCreditRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "get-credits", Method: http.MethodGet, Path: "/v1/credits", Tags: []string{"credits"},
		Summary: "The caller's balance and recent ledger entries", Security: keySecurity,
	}, func(ctx context.Context, in *creditsInput) (*creditsOutput, error) {
		r, err := a.cfg.Backend.Credits(ctx, account(ctx).GetId(), in.Recent)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		return &creditsOutput{Body: creditsView(r)}, nil
	})
}
