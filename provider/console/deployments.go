package console

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Deployment page sizes.
const (
	// DeploymentsPerPage is how many of a stack's newest deployments its deployments page lists.
	DeploymentsPerPage = 100
	// StackDeploymentsMax is how many of them the stack's overview lists.
	StackDeploymentsMax = 5
)

// stackFromPath returns the stack the URL names, or a 404 when it is not a valid stack.
func stackFromPath(r *http.Request) (webhook.Scope, error) {
	s := webhook.Scope{Org: r.PathValue("org"), Project: r.PathValue("project"), Stack: r.PathValue("stack")}
	if s.CheckStack("a stack page") != nil {
		return s, errNotFound("page " + webhook.Quote(r.URL.Path))
	}
	return s, nil
}

// RecentDeploymentsMax is how many of an organization's newest deployments its deployments
// page lists.
const RecentDeploymentsMax = 100

// deploymentTable is a table of deployments; ShowStack adds a column naming each one's stack.
type deploymentTable struct {
	Rows      []*store.Deployment
	ShowStack bool
}

// stackDeploymentsLabel is the navigation entry of a stack's deployments.
func stackDeploymentsLabel(s webhook.Scope) string {
	return "Deployments of " + s.Project + "/" + s.Stack
}

// recentDeploymentsPage lists the organization's newest deployments of every stack.
func (c *Console) recentDeploymentsPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ds, err := c.store.DeploymentListRecent(r.Context(), store.DeploymentListRecentParams{Org: v.token.Org, Limit: RecentDeploymentsMax})
	if err != nil {
		return err
	}
	c.show(w, r, v, http.StatusOK, "deployments", "Deployments of "+v.token.Org, "Deployments",
		deploymentsData{Stack: webhook.Scope{Org: v.token.Org}, Deployments: ds})
	return nil
}

type deploymentsData struct {
	Stack       webhook.Scope
	Deployments []*store.Deployment
}

// deploymentsPage lists a stack's deployments, newest first.
func (c *Console) deploymentsPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	stack, err := stackFromPath(r)
	if err != nil {
		return err
	}
	ds, err := c.store.DeploymentList(r.Context(), store.DeploymentListParams{Stack: stack, Limit: DeploymentsPerPage})
	if err != nil {
		return err
	}
	c.show(w, r, v, http.StatusOK, "deployments", stackDeploymentsLabel(stack), stackDeploymentsLabel(stack),
		deploymentsData{Stack: stack, Deployments: ds})
	return nil
}

type deploymentData struct {
	Deployment  *store.Deployment
	Cancellable bool
}

// deployment returns the deployment the URL names by version (as payloads link it) or by ID.
func (c *Console) deployment(r *http.Request) (*store.Deployment, error) {
	stack, err := stackFromPath(r)
	if err != nil {
		return nil, err
	}
	ref := r.PathValue("deployment")
	d, err := c.engine.DeploymentFind(r.Context(), stack, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("deployment " + webhook.Quote(ref) + " of stack " + webhook.Quote(stack.String()))
	}
	return d, err
}

// deploymentPage shows one deployment: its fields, its drift findings and its log (secrets
// are redacted before a log is stored; the stack's settings are never shown).
func (c *Console) deploymentPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	d, err := c.deployment(r)
	if err != nil {
		return err
	}
	c.show(w, r, v, http.StatusOK, "deployment", "Deployment "+strconv.Itoa(d.Version)+" of "+d.Stack.Project+"/"+d.Stack.Stack,
		stackDeploymentsLabel(d.Stack), deploymentData{Deployment: d, Cancellable: engine.DeploymentCancellable(d)})
	return nil
}

// cancelDeployment cancels a deployment that has not finished, then shows it again.
func (c *Console) cancelDeployment(w http.ResponseWriter, r *http.Request, v *viewer) error {
	d, err := c.deployment(r)
	if err != nil {
		return err
	}
	d, err = c.engine.DeploymentCancel(r.Context(), d)
	if errors.Is(err, engine.ErrDeploymentFinished) {
		return &statusError{code: http.StatusConflict, msg: "deployment " + strconv.Itoa(d.Version) + " has already finished (" + d.Status + "): there is nothing to cancel"}
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, deploymentPath(d)+"?done=canceled", http.StatusSeeOther)
	return nil
}

// deploymentPath is a deployment's page: the path of deploymentUrl in payloads.
func deploymentPath(d *store.Deployment) string {
	return scopePath(d.Stack) + "/deployments/" + strconv.Itoa(d.Version)
}

// deploymentsPath is the page listing a stack's deployments.
func deploymentsPath(s webhook.Scope) string {
	return "/-/stacks/" + url.PathEscape(s.Org) + "/" + url.PathEscape(s.Project) + "/" + url.PathEscape(s.Stack) + "/deployments"
}

// logText makes a deployment log safe to show: line breaks and tabs stay, any other control
// or invisible character is shown as its escape.
func logText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		cells := strings.Split(l, "\t")
		for j, c := range cells {
			cells[j] = webhook.Printable(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n")
}
