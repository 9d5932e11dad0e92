package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// deploymentRoutes registers Pulumi Cloud's Deployments endpoints of a stack.
func (s *Server) deploymentRoutes() {
	const p = "/api/stacks/{org}/{project}/{stack}/deployments"
	s.api(p+"/settings", webhook.ScopeStack, methods{
		http.MethodGet: s.settingsGet, http.MethodPost: s.settingsPut, http.MethodPatch: s.settingsPatch, http.MethodDelete: s.settingsDelete,
	})
	s.api(p, webhook.ScopeStack, methods{http.MethodGet: s.deploymentList, http.MethodPost: s.deploymentCreate})
	s.api(p+"/{deployment}", webhook.ScopeStack, methods{http.MethodGet: s.deploymentGet})
	s.api(p+"/{deployment}/logs", webhook.ScopeStack, methods{http.MethodGet: s.deploymentLogs})
	s.api(p+"/{deployment}/cancel", webhook.ScopeStack, methods{http.MethodPost: s.deploymentCancel})
	s.api(p+"/drift/schedules", webhook.ScopeStack, methods{http.MethodGet: s.driftList, http.MethodPost: s.driftCreate})
	s.api(p+"/drift/schedules/{schedule}", webhook.ScopeStack, methods{http.MethodGet: s.driftGet, http.MethodDelete: s.driftDelete})
}

func settingsNotFound(c *call) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("stack %s has no deployment settings: set them with POST", webhook.Quote(c.scope.String())))
}

// settingsResponse is what the settings endpoints answer: the settings with every secret as
// its ciphertext (a keyed digest), never its value.
func (s *Server) settingsResponse(w http.ResponseWriter, code int, ds *store.DeploymentSettings) error {
	set, err := api.SettingsFromStore(ds)
	if err != nil {
		return err
	}
	writeJSON(w, code, set)
	return nil
}

func (s *Server) settingsGet(w http.ResponseWriter, r *http.Request, c *call) error {
	ds, err := s.store.DeploymentSettingsGet(r.Context(), c.scope)
	if errors.Is(err, store.ErrNotFound) {
		return settingsNotFound(c)
	}
	if err != nil {
		return err
	}
	return s.settingsResponse(w, http.StatusOK, ds)
}

// settingsPut replaces the settings (POST); settingsPatch merges the body into them. A secret
// sent back as the {"ciphertext": ...} it was read as keeps its stored value.
func (s *Server) settingsPut(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.settingsWrite(w, r, c, false)
}

func (s *Server) settingsPatch(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.settingsWrite(w, r, c, true)
}

func (s *Server) settingsWrite(w http.ResponseWriter, r *http.Request, c *call, merge bool) error {
	prev, err := s.store.DeploymentSettingsGet(r.Context(), c.scope)
	switch {
	case errors.Is(err, store.ErrNotFound):
		prev = nil
		if merge {
			return settingsNotFound(c)
		}
	case err != nil:
		return err
	}
	set := &api.DeploymentSettings{}
	if merge {
		if set, err = api.SettingsFromStore(prev); err != nil {
			return err
		}
	}
	if err := decodeJSON(r, set); err != nil {
		return err
	}
	// A variable given as null is removed (PATCH) or left out (POST).
	set.DropRemoved()
	if err := set.Validate(); err != nil {
		return err
	}
	doc, secrets, err := set.ToStore(prev)
	if err != nil {
		return fieldError("body", err.Error())
	}
	ds, err := s.store.DeploymentSettingsPut(r.Context(), store.DeploymentSettingsPutParams{Stack: c.scope, Settings: doc, Secrets: secrets, Now: s.cfg.Now()})
	if err != nil {
		return err
	}
	return s.settingsResponse(w, http.StatusOK, ds)
}

func (s *Server) settingsDelete(w http.ResponseWriter, r *http.Request, c *call) error {
	err := s.store.DeploymentSettingsDelete(r.Context(), c.scope)
	if errors.Is(err, store.ErrNotFound) {
		return settingsNotFound(c)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deploymentCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	var body api.CreateDeploymentRequest
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Operation == "" {
		return fieldError("operation", fmt.Sprintf("is required: give one of %v", engine.Operations))
	}
	if _, err := s.store.DeploymentSettingsGet(r.Context(), c.scope); errors.Is(err, store.ErrNotFound) {
		return apiError(http.StatusBadRequest, fmt.Sprintf("stack %s has no deployment settings: set them with POST %s/settings first",
			webhook.Quote(c.scope.String()), r.URL.Path))
	} else if err != nil {
		return err
	}
	d, _, err := s.engine.DeploymentCreate(r.Context(), engine.DeploymentCreateParams{Stack: c.scope, Operation: body.Operation, Source: engine.DeploymentSourceAPI,
		Actor: TokenUser(c.token)})
	if err != nil {
		return err
	}
	w.Header().Set("Location", r.URL.Path+"/"+d.ID)
	writeJSON(w, http.StatusAccepted, api.CreateDeploymentResponse{ID: d.ID, Version: d.Version, Status: d.Status})
	return nil
}

func (s *Server) deploymentList(w http.ResponseWriter, r *http.Request, c *call) error {
	limit := 0
	if v := r.URL.Query().Get("pageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return fieldError("pageSize", fmt.Sprintf("%q must be a number from 1 to 1000", v))
		}
		limit = n
	}
	ds, err := s.store.DeploymentList(r.Context(), store.DeploymentListParams{Stack: c.scope, Limit: limit})
	if err != nil {
		return err
	}
	out := api.DeploymentList{Deployments: make([]api.Deployment, 0, len(ds))}
	for _, d := range ds {
		out.Deployments = append(out.Deployments, api.FromDeployment(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deployment returns the deployment the URL names, by id or by version.
func (s *Server) deployment(r *http.Request, c *call) (*store.Deployment, error) {
	id := r.PathValue("deployment")
	d, err := s.engine.DeploymentFind(r.Context(), c.scope, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiError(http.StatusNotFound, fmt.Sprintf("deployment %s of stack %s not found", webhook.Quote(id), webhook.Quote(c.scope.String())))
	}
	return d, err
}

func (s *Server) deploymentGet(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.deployment(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.FromDeployment(d))
	return nil
}

func (s *Server) deploymentLogs(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := s.deployment(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.DeploymentLogs{ID: d.ID, Status: d.Status, Log: d.Log})
	return nil
}

// deploymentCancel cancels a deployment: one not started fails at once (deployment_failed is
// emitted); a running one is stopped by its runner within moments.
func (s *Server) deploymentCancel(w http.ResponseWriter, r *http.Request, c *call) error {
	before, err := s.deployment(r, c)
	if err != nil {
		return err
	}
	d, err := s.engine.DeploymentCancel(r.Context(), before)
	if errors.Is(err, engine.ErrDeploymentFinished) {
		return apiError(http.StatusConflict, fmt.Sprintf("deployment %s has already finished (%s): there is nothing to cancel", d.ID, d.Status))
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, api.FromDeployment(d))
	return nil
}

func (s *Server) driftList(w http.ResponseWriter, r *http.Request, c *call) error {
	ss, err := s.store.DriftScheduleList(r.Context(), c.scope)
	if err != nil {
		return err
	}
	out := api.DriftScheduleList{Schedules: make([]api.DriftSchedule, 0, len(ss))}
	for _, sc := range ss {
		out.Schedules = append(out.Schedules, api.FromDriftSchedule(sc))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) driftCreate(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.ParseCron == nil {
		return apiError(http.StatusNotImplemented, "drift schedules need the deployment runner, which this server was built without")
	}
	var body api.DriftSchedule
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.ScheduleCron == "" {
		return fieldError("scheduleCron", "is required: give a cron expression, e.g. \"0 */6 * * *\"")
	}
	now := s.cfg.Now()
	next, err := s.cfg.ParseCron(body.ScheduleCron, now)
	if err != nil {
		return fieldError("scheduleCron", err.Error())
	}
	sc := &store.DriftSchedule{Stack: c.scope, ScheduleCron: body.ScheduleCron, AutoRemediate: body.AutoRemediate, NextRunAt: next, CreatedAt: now}
	if err := s.store.DriftScheduleCreate(r.Context(), sc); err != nil {
		return err
	}
	w.Header().Set("Location", r.URL.Path+"/"+sc.ID)
	writeJSON(w, http.StatusCreated, api.FromDriftSchedule(sc))
	return nil
}

func (s *Server) driftGet(w http.ResponseWriter, r *http.Request, c *call) error {
	ss, err := s.store.DriftScheduleList(r.Context(), c.scope)
	if err != nil {
		return err
	}
	for _, sc := range ss {
		if sc.ID == r.PathValue("schedule") {
			writeJSON(w, http.StatusOK, api.FromDriftSchedule(sc))
			return nil
		}
	}
	return driftNotFound(r, c)
}

func driftNotFound(r *http.Request, c *call) error {
	return apiError(http.StatusNotFound, fmt.Sprintf("drift schedule %s of stack %s not found", webhook.Quote(r.PathValue("schedule")), webhook.Quote(c.scope.String())))
}

func (s *Server) driftDelete(w http.ResponseWriter, r *http.Request, c *call) error {
	err := s.store.DriftScheduleDelete(r.Context(), c.scope, r.PathValue("schedule"))
	if errors.Is(err, store.ErrNotFound) {
		return driftNotFound(r, c)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
