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

// NewAPIKey is a key just created; api_key is shown only this once.
type NewAPIKey struct {
	AccountID string    `json:"account_id"`
	KeyID     string    `json:"key_id"`
	APIKey    string    `json:"api_key" doc:"Shown once; only its SHA-256 is stored."`
	CreatedAt time.Time `json:"created_at"`
	Revoked   []string  `json:"revoked_key_ids,omitempty" doc:"The keys revoked by revoke_others."`
}

// APIKey is one key of an account as admins see it: never the key, never its hash.
type APIKey struct {
	KeyID     string     `json:"key_id"`
	CreatedAt time.Time  `json:"created_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

type accountIDInput struct {
	ID string `path:"id" doc:"Account id."`
}

type createKeyInput struct {
	ID   string `path:"id" doc:"Account id."`
	Body *struct {
		RevokeOthers bool `json:"revoke_others,omitempty" doc:"Also revoke every other live key of the account, in the same durable write: rotation in one call. Without it, the old keys stay valid until revoked with DELETE .../keys/{key_id}."`
	}
}

type createKeyOutput struct {
	Location string `header:"Location"`
	Body     NewAPIKey
}

type listKeysOutput struct {
	Body struct {
		AccountID string   `json:"account_id"`
		Keys      []APIKey `json:"keys"`
	}
}

type revokeKeyInput struct {
	ID    string `path:"id" doc:"Account id."`
	KeyID string `path:"key_id" doc:"Key id (key_...), as created or listed."`
}

func addKeyRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "create-key", Method: http.MethodPost, Path: "/v1/admin/accounts/{id}/keys", Tags: []string{"admin"},
		Summary: "Create an API key for an account (rotation)",
		Description: "Draws a new random key (192 bits), stores only its SHA-256 and answers the key once. " +
			"To rotate, create a new key, move the clients to it, then revoke the old one with DELETE; " +
			"or send `{\"revoke_others\": true}` to revoke every other key of the account in the same call.",
		Security: adminSecurity, DefaultStatus: http.StatusCreated, Errors: []int{401, 404, 422},
	}, func(ctx context.Context, in *createKeyInput) (*createKeyOutput, error) {
		id, err := a.accountID(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		in.ID = id
		revokeOthers := in.Body != nil && in.Body.RevokeOthers
		k, err := a.cfg.Backend.CreateKey(ctx, in.ID, revokeOthers)
		if err != nil {
			return nil, keyProblem(a, err)
		}
		out := &createKeyOutput{Location: "/v1/admin/accounts/" + in.ID + "/keys"}
		out.Body = NewAPIKey{
			AccountID: in.ID, KeyID: k.KeyID, APIKey: k.Key,
			CreatedAt: time.UnixMilli(k.Record.GetCreatedUnixMs()).UTC(),
		}
		for _, r := range k.Revoked {
			out.Body.Revoked = append(out.Body.Revoked, r.GetKeyId())
		}
		return out, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "list-keys", Method: http.MethodGet, Path: "/v1/admin/accounts/{id}/keys", Tags: []string{"admin"},
		Summary:  "List an account's API keys, revoked ones included (ids and dates only)",
		Security: adminSecurity, Errors: []int{401, 404},
	}, func(ctx context.Context, in *accountIDInput) (*listKeysOutput, error) {
		id, err := a.accountID(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		in.ID = id
		keys, err := a.cfg.Backend.Keys(ctx, in.ID)
		if err != nil {
			return nil, keyProblem(a, err)
		}
		out := &listKeysOutput{}
		out.Body.AccountID = in.ID
		out.Body.Keys = make([]APIKey, 0, len(keys))
		for _, k := range keys {
			out.Body.Keys = append(out.Body.Keys, keyView(k))
		}
		return out, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "revoke-key", Method: http.MethodDelete, Path: "/v1/admin/accounts/{id}/keys/{key_id}", Tags: []string{"admin"},
		Summary: "Revoke an API key",
		Description: "From this answer on, the key is refused (401) by every node of the cluster. " +
			"Revoking a revoked key answers 204 again.",
		Security: adminSecurity, DefaultStatus: http.StatusNoContent, Errors: []int{401, 404},
	}, func(ctx context.Context, in *revokeKeyInput) (*struct{}, error) {
		id, err := a.accountID(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		in.ID = id
		if _, err := a.cfg.Backend.RevokeKey(ctx, in.ID, in.KeyID); err != nil {
			return nil, keyProblem(a, err)
		}
		return &struct{}{}, nil
	})
}

// keyProblem answers 404 for an unknown account, or a key id that is not
// one of the account's.
func keyProblem(a *API, err error) error {
	if errors.Is(err, ledger.ErrUnknownAccount) {
		return huma.Error404NotFound("no such account, or no such key of the account")
	}
	return problem(a.cfg.Log, err)
}

func keyView(k *messages.APIKey) APIKey {
	v := APIKey{KeyID: k.GetKeyId(), CreatedAt: time.UnixMilli(k.GetCreatedUnixMs()).UTC(), Revoked: k.GetRevoked()}
	if k.GetRevoked() {
		at := time.UnixMilli(k.GetRevokedUnixMs()).UTC()
		v.RevokedAt = &at
	}
	return v
}
