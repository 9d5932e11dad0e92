package console

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// formValues is what the hook form shows and sends. The secret is never among them: a form
// shown again after an error asks for it again rather than echo it into the page.
type formValues struct {
	Project, Stack, Environment string
	Name, DisplayName           string
	PayloadURL                  string
	Format                      string
	Active                      bool
	Filters, Groups             []string
	HasSecret                   bool
}

type formData struct {
	Create  bool
	Action  string
	Cancel  string
	Hook    *store.Hook
	Values  formValues
	Errors  map[string][]string
	Summary webhook.FieldErrors
	More    int
	Formats []string
	Filters []string
	Groups  []string
}

func newFormData(create bool, action, cancel string, vals formValues) formData {
	d := formData{Create: create, Action: action, Cancel: cancel, Values: vals, Errors: map[string][]string{}}
	for _, f := range webhook.Formats() {
		d.Formats = append(d.Formats, string(f))
	}
	for _, f := range webhook.AllFilters() {
		d.Filters = append(d.Filters, string(f))
	}
	for _, g := range webhook.Groups() {
		d.Groups = append(d.Groups, string(g))
	}
	return d
}

// withErrors attaches field errors to the inputs they name: "filters[2]" to the filters.
func (d formData) withErrors(fe webhook.FieldErrors) formData {
	d.Summary, d.More = fe.Reported()
	for _, e := range d.Summary {
		field, _, _ := strings.Cut(e.Field, "[")
		d.Errors[field] = append(d.Errors[field], e.Message)
	}
	return d
}

func valuesFromHook(h *store.Hook) formValues {
	v := formValues{Project: h.Project, Stack: h.Stack, Environment: h.Environment, Name: h.Name,
		DisplayName: h.DisplayName, PayloadURL: h.PayloadURL, Format: string(h.Format), Active: h.Active, HasSecret: h.HasSecret}
	for _, f := range h.Filters {
		v.Filters = append(v.Filters, string(f))
	}
	for _, g := range h.Groups {
		v.Groups = append(v.Groups, string(g))
	}
	return v
}

func valuesFromForm(r *http.Request) formValues {
	f := r.PostForm
	return formValues{
		Project: f.Get("projectName"), Stack: f.Get("stackName"), Environment: f.Get("environmentName"),
		Name: f.Get("name"), DisplayName: f.Get("displayName"), PayloadURL: f.Get("payloadUrl"),
		Format: f.Get("format"), Active: f.Get("active") == "on", Filters: f["filters"], Groups: f["groups"],
	}
}

// apply sets the form's mutable fields on spec.
func (v formValues) apply(spec *webhook.Spec) {
	spec.DisplayName, spec.PayloadURL, spec.Active = v.DisplayName, v.PayloadURL, v.Active
	spec.Format = webhook.Format(v.Format)
	spec.Filters, spec.Groups = nil, nil
	for _, f := range v.Filters {
		spec.Filters = append(spec.Filters, webhook.Filter(f))
	}
	for _, g := range v.Groups {
		spec.Groups = append(spec.Groups, webhook.Group(g))
	}
}

func newHookPath(org string) string {
	return "/-/orgs/" + strings.TrimPrefix(orgPath(org), "/") + "/new-hook"
}

func (c *Console) newHookForm(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	vals := formValues{Active: true, Format: string(webhook.FormatDefault),
		Project: q.Get("projectName"), Stack: q.Get("stackName"), Environment: q.Get("environmentName")}
	c.show(w, r, v, http.StatusOK, "form", "New webhook", "New webhook", newFormData(true, newHookPath(v.token.Org), orgPath(v.token.Org), vals))
	return nil
}

// createHook creates a hook from the form; invalid input shows the form again with each
// problem beside its field, in the API's words.
func (c *Console) createHook(w http.ResponseWriter, r *http.Request, v *viewer) error {
	vals := valuesFromForm(r)
	spec := webhook.Spec{
		Scope: webhook.Scope{Org: v.token.Org, Project: vals.Project, Stack: vals.Stack, Environment: vals.Environment},
		Name:  vals.Name, Secret: r.PostForm.Get("secret"),
	}
	vals.apply(&spec)
	h, err := c.engine.HookCreate(r.Context(), spec)
	if err != nil {
		d := newFormData(true, newHookPath(v.token.Org), orgPath(v.token.Org), vals)
		return c.formError(w, r, v, d, store.HookRef{Scope: spec.Scope, Name: spec.Name}, err)
	}
	http.Redirect(w, r, hookPath(h.Ref())+"?done=created", http.StatusSeeOther)
	return nil
}

// formError shows the form again for field errors and a name already taken; anything else is
// the page's error.
func (c *Console) formError(w http.ResponseWriter, r *http.Request, v *viewer, d formData, ref store.HookRef, err error) error {
	var fe webhook.FieldErrors
	switch {
	case errors.As(err, &fe):
		d = d.withErrors(fe)
		c.show(w, r, v, http.StatusBadRequest, "form", formTitle(d), formNav(d), d)
		return nil
	case errors.Is(err, store.ErrAlreadyExists):
		d = d.withErrors(webhook.FieldErrors{{Field: "name", Message: fmt.Sprintf(
			"a webhook named %q already exists in %s: choose another name, or update the existing webhook", ref.Name, ref.Scope.String())}})
		c.show(w, r, v, http.StatusConflict, "form", formTitle(d), formNav(d), d)
		return nil
	}
	return hookNotFound(ref, err)
}

func formTitle(d formData) string {
	if d.Create {
		return "New webhook"
	}
	return "Edit " + d.Hook.DisplayName
}

func formNav(d formData) string {
	if d.Create {
		return "New webhook"
	}
	return "Webhooks"
}

func (c *Console) editHookForm(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	h, err := c.engine.HookGet(r.Context(), ref)
	if err != nil {
		return hookNotFound(ref, err)
	}
	d := newFormData(false, hookPath(ref)+"/edit", hookPath(ref), valuesFromHook(h))
	d.Hook = h
	c.show(w, r, v, http.StatusOK, "form", formTitle(d), "Webhooks", d)
	return nil
}

// editHook saves the form over the hook's mutable fields. An empty secret keeps the current
// one; "remove the secret" removes it.
func (c *Console) editHook(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	h, err := c.engine.HookGet(ctx, ref)
	if err != nil {
		return hookNotFound(ref, err)
	}
	vals := valuesFromForm(r)
	spec := h.Spec
	vals.apply(&spec)
	var secret *string
	switch s := r.PostForm.Get("secret"); {
	case r.PostForm.Get("removeSecret") == "on":
		empty := ""
		secret = &empty
	case s != "":
		secret = &s
	}
	updated, err := c.engine.HookUpdate(ctx, engine.HookUpdateParams{Ref: ref, Spec: spec, Secret: secret})
	if err != nil {
		show := valuesFromHook(h)
		show.DisplayName, show.PayloadURL, show.Format, show.Active, show.Filters, show.Groups =
			vals.DisplayName, vals.PayloadURL, vals.Format, vals.Active, vals.Filters, vals.Groups
		d := newFormData(false, hookPath(ref)+"/edit", hookPath(ref), show)
		d.Hook = h
		return c.formError(w, r, v, d, ref, err)
	}
	http.Redirect(w, r, hookPath(updated.Ref())+"?done=updated", http.StatusSeeOther)
	return nil
}

// setActive activates or deactivates a hook (active=true or false in the form).
func (c *Console) setActive(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ctx := r.Context()
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	var active bool
	switch a := r.PostForm.Get("active"); a {
	case "true":
		active = true
	case "false":
	default:
		return webhook.FieldErrors{{Field: "active", Message: fmt.Sprintf("is %s: send true or false", webhook.Quote(a))}}
	}
	h, err := c.engine.HookGet(ctx, ref)
	if err != nil {
		return hookNotFound(ref, err)
	}
	spec := h.Spec
	spec.Active = active
	if _, err := c.engine.HookUpdate(ctx, engine.HookUpdateParams{Ref: ref, Spec: spec}); err != nil {
		return hookNotFound(ref, err)
	}
	done := "deactivated"
	if active {
		done = "activated"
	}
	http.Redirect(w, r, hookPath(ref)+"?done="+done, http.StatusSeeOther)
	return nil
}

func (c *Console) deleteHook(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	if err := c.engine.HookDelete(r.Context(), ref); err != nil {
		return hookNotFound(ref, err)
	}
	http.Redirect(w, r, scopePath(ref.Scope)+"?done=deleted", http.StatusSeeOther)
	return nil
}

func (c *Console) ping(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	if _, err := c.engine.Ping(r.Context(), ref); err != nil {
		return hookNotFound(ref, err)
	}
	http.Redirect(w, r, hookPath(ref)+"?done=pinged", http.StatusSeeOther)
	return nil
}

func (c *Console) redeliver(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ref := store.HookRef{Scope: scopeFromPath(r), Name: r.PathValue("hook")}
	id := r.PathValue("delivery")
	_, err := c.engine.Redeliver(r.Context(), ref, id)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound(fmt.Sprintf("delivery %s of webhook %s", webhook.Quote(id), webhook.Quote(ref.String())))
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, hookPath(ref)+"?done=redelivered", http.StatusSeeOther)
	return nil
}
