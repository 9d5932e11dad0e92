package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// emitFlags maps the event request's fields to the flags that set them.
var emitFlags = map[string]string{
	"organizationName": "--org", "filter": "--filter", "projectName": "--project", "stackName": "--stack",
	"environmentName": "--environment", "payload": "--payload", "idempotencyKey": "--idempotency-key",
}

func newEmitCmd(o Opts) *cobra.Command {
	var (
		so      storeOpts
		names   orgNameOpts
		out     outputOpts
		p       engine.EmitParams
		filter  string
		payload string
	)
	cmd := &cobra.Command{
		Use:   "emit --org ORG --filter FILTER (--project P --stack S | --project P --environment E)",
		Short: "Fire an event: store it with a delivery for every matching webhook",
		Long: `emit records an event, as POST /api/orgs/{org}/events does, with a delivery for every
active webhook it matches; a running server (or the next one to start) sends them. It takes
the same fields: --filter is the event (e.g. update_succeeded), --project with --stack
names the stack it happened to, or --project with --environment the ESC environment.
--payload is a JSON object (or @FILE, or - for standard input) whose top-level fields
replace the generated payload's, e.g. '{"user": {"name": "ci"}}'.`,
		Example: `  pulumi-webhooks emit --org acme --filter update_succeeded --project web --stack prod
  pulumi-webhooks emit --org acme --filter environment_revision_created --project app --environment dev`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if p.Subject.Org == "" {
				return fmt.Errorf("--org is required: name the organization the event happened in")
			}
			raw, err := readPayload(payload, o.Stdin)
			if err != nil {
				return err
			}
			if raw != nil && !json.Valid(raw) {
				return fmt.Errorf("--payload is not valid JSON: give a JSON object such as '{\"user\": {\"name\": \"ci\"}}'")
			}
			p.Filter, p.Overrides = webhook.Filter(filter), raw
			// The engine's check, before the store is opened; Emit checks again.
			if err := p.Validate(); err != nil {
				return flagErrors(err, emitFlags)
			}
			var res *engine.EmitResult
			err = withEngineNames(cmd.Context(), &so, nil, &names, o.Version, func(e *engine.Engine, _ store.Store) error {
				res, err = e.Emit(cmd.Context(), p)
				return err
			})
			if errors.Is(err, engine.ErrIdempotencyKeyReused) {
				return fmt.Errorf("--idempotency-key %q was used within the last %g hours for a different event (filter, stack or environment, or payload): "+
					"use a new key for a new event, or repeat the first command exactly to get its answer", p.IdempotencyKey, engine.IdempotencyWindow.Hours())
			}
			if err != nil {
				return flagErrors(err, emitFlags)
			}
			if out.json {
				return printJSON(o.Stdout, api.EmitResponse{EventID: res.EventID, Deliveries: res.Deliveries, DeploymentRequests: res.DeploymentRequests})
			}
			replayed := ""
			if res.Replayed {
				replayed = " (replayed: this idempotency key was used before; nothing new was stored)"
			}
			fmt.Fprintf(o.Stdout, "Event %s: %d deliveries, %d deployment requests%s.\n", res.EventID, res.Deliveries, res.DeploymentRequests, replayed)
			return nil
		},
	}
	so.addFlags(cmd)
	names.addFlags(cmd)
	out.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&p.Subject.Org, "org", "", "organization the event happened in (required)")
	f.StringVar(&filter, "filter", "", "the event, e.g. update_succeeded (required)")
	f.StringVar(&p.Subject.Project, "project", "", "project of the stack or environment")
	f.StringVar(&p.Subject.Stack, "stack", "", "stack the event is about (stack events)")
	f.StringVar(&p.Subject.Environment, "environment", "", "ESC environment the event is about (environment events)")
	f.StringVar(&payload, "payload", "", "JSON object overriding payload fields, @FILE, or - for standard input")
	f.StringVar(&p.IdempotencyKey, "idempotency-key", "", "same key within 24 hours replays the first result instead of storing a new event")
	return cmd
}

func readPayload(flag string, stdin io.Reader) ([]byte, error) {
	switch {
	case flag == "":
		return nil, nil
	case flag == "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("--payload -: read standard input: %w", err)
		}
		return b, nil
	case strings.HasPrefix(flag, "@"):
		b, err := os.ReadFile(flag[1:])
		if err != nil {
			return nil, fmt.Errorf("--payload %s: %w", flag, err)
		}
		return b, nil
	}
	return []byte(flag), nil
}
