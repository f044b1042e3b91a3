package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
)

type healthOutput struct {
	Body struct {
		Status string `json:"status" example:"ok"`
		// Warnings say what is ready but unsafe (e.g. an insecure cluster).
		Warnings []string `json:"warnings,omitempty"`
	}
}

func addHealthRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "healthz", Method: http.MethodGet, Path: "/healthz", Tags: []string{"health"},
		Summary: "The process is alive",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		out := &healthOutput{}
		out.Body.Status = "ok"
		return out, nil
	})
	huma.Register(a.api, huma.Operation{
		OperationID: "readyz", Method: http.MethodGet, Path: "/readyz", Tags: []string{"health"},
		Summary: "The node can take work: store readable, cluster joined, ledger answering", Errors: []int{503},
		Description: "503 (problem+json) when it cannot, with every reason in the detail.",
	}, func(ctx context.Context, _ *struct{}) (*healthOutput, error) {
		if err := a.cfg.Backend.Ready(ctx); err != nil {
			return nil, huma.Error503ServiceUnavailable("not ready: " + err.Error())
		}
		out := &healthOutput{}
		out.Body.Status = "ready"
		out.Body.Warnings = a.cfg.ReadyWarnings
		return out, nil
	})
}
