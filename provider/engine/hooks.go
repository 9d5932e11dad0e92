package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// HookUpdateParams replaces the mutable fields of the hook Ref names with Spec's: display name,
// payload URL, active, format, filters and groups. Spec's scope and name, when set, must be
// Ref's (a hook cannot move). Spec.Secret is ignored: Secret nil keeps the stored secret, a
// pointer to "" removes it, anything else replaces it.
type HookUpdateParams struct {
	Ref    store.HookRef
	Spec   webhook.Spec
	Secret *string
}

// HookCreate validates spec, fills its defaults and stores it. Spec.Name empty means the store
// generates one. Invalid specs come back as webhook.FieldErrors; a hook of the same scope and
// name as store.ErrAlreadyExists.
func (e *Engine) HookCreate(ctx context.Context, spec webhook.Spec) (*store.Hook, error) {
	spec.Normalize()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	h, err := e.store.HookCreate(ctx, store.HookCreateParams{Spec: spec, Now: e.cfg.Now()})
	if err != nil {
		return nil, fmt.Errorf("create webhook %s: %w", hookName(spec.Scope, spec.Name), err)
	}
	e.log.InfoContext(ctx, "webhook created", "hook", h.Ref().String(), "hook_id", h.ID,
		"format", string(h.Format), "active", h.Active, "has_secret", h.HasSecret)
	return h, nil
}

// HookGet returns the hook ref names, or an error wrapping store.ErrNotFound.
func (e *Engine) HookGet(ctx context.Context, ref store.HookRef) (*store.Hook, error) {
	if err := validateRef(ref); err != nil {
		return nil, err
	}
	h, err := e.store.HookGet(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("get webhook %s: %w", ref, err)
	}
	return h, nil
}

// HookList lists hooks: every hook when p.Scope.Org is empty, every hook of the organization,
// or with p.Exact only those of exactly p.Scope, by name in byte order, one page of them with
// p.After and p.Limit (the store checks those: store.HookListParams.Validate).
func (e *Engine) HookList(ctx context.Context, p store.HookListParams) ([]*store.Hook, error) {
	if p.Scope != (webhook.Scope{}) {
		if err := p.Scope.Validate(); err != nil {
			return nil, err
		}
	}
	hs, err := e.store.HookList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list webhooks of %q: %w", p.Scope.String(), err)
	}
	return hs, nil
}

// HookUpdate replaces a hook's mutable fields (see HookUpdateParams) and returns it as stored.
func (e *Engine) HookUpdate(ctx context.Context, p HookUpdateParams) (*store.Hook, error) {
	if err := validateRef(p.Ref); err != nil {
		return nil, err
	}
	spec := p.Spec
	var errs webhook.FieldErrors
	if spec.Scope != (webhook.Scope{}) && spec.Scope != p.Ref.Scope {
		errs.Add("organizationName", fmt.Sprintf("the webhook belongs to %q and cannot move to %q: delete it and create a new one instead", p.Ref.Scope.String(), spec.Scope.String()))
	}
	if spec.Name != "" && spec.Name != p.Ref.Name {
		errs.Add("name", fmt.Sprintf("the webhook is named %q and cannot be renamed to %q: delete it and create a new one instead", p.Ref.Name, spec.Name))
	}
	if p.Secret != nil && *p.Secret != "" {
		if err := webhook.CheckSecret(*p.Secret); err != nil {
			errs.Add("secret", err.Error())
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	spec.Scope, spec.Name, spec.Secret = p.Ref.Scope, p.Ref.Name, ""
	spec.Normalize()
	// The name cannot change, so it is not checked again: a hook named before the hook-name
	// rules (webhook.CheckHookName) can still be updated.
	check := spec
	check.Name = ""
	if err := check.Validate(); err != nil {
		return nil, err
	}
	h, err := e.store.HookUpdate(ctx, store.HookUpdateParams{Ref: p.Ref, Spec: spec, Secret: p.Secret, Now: e.cfg.Now()})
	if err != nil {
		return nil, fmt.Errorf("update webhook %s: %w", p.Ref, err)
	}
	e.log.InfoContext(ctx, "webhook updated", "hook", h.Ref().String(), "hook_id", h.ID,
		"format", string(h.Format), "active", h.Active, "has_secret", h.HasSecret, "secret_changed", p.Secret != nil)
	return h, nil
}

// HookDelete deletes a hook; its pending deliveries are discarded when a worker reaches them.
func (e *Engine) HookDelete(ctx context.Context, ref store.HookRef) error {
	if err := validateRef(ref); err != nil {
		return err
	}
	if err := e.store.HookDelete(ctx, ref); err != nil {
		return fmt.Errorf("delete webhook %s: %w", ref, err)
	}
	e.log.InfoContext(ctx, "webhook deleted", "hook", ref.String())
	return nil
}

// validateRef checks that ref names one hook: a valid scope and a name.
func validateRef(ref store.HookRef) error {
	var errs webhook.FieldErrors
	var scopeErrs webhook.FieldErrors
	if errors.As(ref.Scope.Validate(), &scopeErrs) {
		errs = append(errs, scopeErrs...)
	}
	if ref.Name == "" {
		errs.Add("name", "is required: give the name of the webhook")
	} else if err := webhook.CheckHookRefName(ref.Name); err != nil {
		errs.Add("name", err.Error())
	}
	return errs.Err()
}

func hookName(s webhook.Scope, name string) string {
	if name == "" {
		return s.String() + "/(generated name)"
	}
	return s.String() + "/" + name
}
