package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/deploy"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func newDeploymentsCmd(o Opts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deployments",
		Short: "Deployment settings, deployments and drift schedules of stacks",
		Long: `deployments works on the store as the REST API's Deployments endpoints do. STACK is
ORG/PROJECT/STACK. The runner inside ` + "`serve`" + ` (--deployment-workers) carries out what is
queued here.`,
	}
	settings := &cobra.Command{Use: "settings", Short: "Set, show and delete a stack's deployment settings"}
	settings.AddCommand(newSettingsSetCmd(o), newSettingsGetCmd(o), newSettingsDeleteCmd(o))
	drift := &cobra.Command{Use: "drift-schedules", Short: "Create, list and delete a stack's drift schedules"}
	drift.AddCommand(newDriftCreateCmd(o), newDriftListCmd(o), newDriftDeleteCmd(o))
	cmd.AddCommand(settings, drift, newDeployCreateCmd(o), newDeployListCmd(o), newDeployGetCmd(o, false), newDeployGetCmd(o, true),
		newDeployCancelCmd(o))
	return cmd
}

// parseStack reads ORG/PROJECT/STACK.
func parseStack(s string) (webhook.Scope, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return webhook.Scope{}, fmt.Errorf("STACK %q: give ORG/PROJECT/STACK, e.g. acme/web/prod", s)
	}
	sc := webhook.Scope{Org: parts[0], Project: parts[1], Stack: parts[2]}
	if err := sc.CheckStack("STACK"); err != nil {
		return webhook.Scope{}, fmt.Errorf("STACK %q: %w", s, err)
	}
	return sc, nil
}

// stackRun is the work of a deployments command: the stack its first argument names, all its
// arguments, and the engine and store it opened.
type stackRun func(ctx context.Context, stack webhook.Scope, args []string, e *engine.Engine, st store.Store) error

// stackCmd completes cmd as a deployments command taking nargs arguments, the first a STACK
// (ORG/PROJECT/STACK), and working on the store (--store flags); check, when set, reads and
// validates the command's own flags before the store opens.
func stackCmd(o Opts, cmd *cobra.Command, nargs int, check func() error, run stackRun) *cobra.Command {
	var so storeOpts
	cmd.Args = cobra.ExactArgs(nargs)
	cmd.RunE = func(c *cobra.Command, args []string) error {
		stack, err := parseStack(args[0])
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		return withEngine(c.Context(), &so, nil, o.Version, func(e *engine.Engine, st store.Store) error {
			return run(c.Context(), stack, args, e, st)
		})
	}
	so.addFlags(cmd)
	return cmd
}

func newSettingsSetCmd(o Opts) *cobra.Command {
	var file string
	var set api.DeploymentSettings
	read := func() error {
		var r io.Reader = o.Stdin
		if file == "" {
			return errors.New("--file is required: give the settings JSON file, or - for standard input")
		}
		if file != "-" {
			f, err := os.Open(file)
			if err != nil {
				return fmt.Errorf("--file: %w", err)
			}
			defer f.Close()
			r = f
		}
		dec := json.NewDecoder(r)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&set); err != nil {
			return fmt.Errorf("--file: not deployment settings JSON: %w", err)
		}
		set.DropRemoved()
		return set.Validate()
	}
	cmd := stackCmd(o, &cobra.Command{
		Use:   "set STACK --file FILE",
		Short: "Replace a stack's deployment settings with a JSON document (the REST API's shape)",
		Long: `set reads the settings from --file (- for standard input) in the shape of the REST API's
POST .../deployments/settings, validates them and stores them; secret values
({"secret": "..."}) are sealed with the store's key and never printed.`,
	}, 1, read, func(ctx context.Context, stack webhook.Scope, _ []string, _ *engine.Engine, st store.Store) error {
		prev, err := st.DeploymentSettingsGet(ctx, stack)
		if errors.Is(err, store.ErrNotFound) {
			prev, err = nil, nil
		}
		if err != nil {
			return err
		}
		doc, secrets, err := set.ToStore(prev)
		if err != nil {
			return err
		}
		ds, err := st.DeploymentSettingsPut(ctx, store.DeploymentSettingsPutParams{Stack: stack, Settings: doc, Secrets: secrets, Now: time.Now()})
		if err != nil {
			return err
		}
		out, err := api.SettingsFromStore(ds)
		if err != nil {
			return err
		}
		return printJSON(o.Stdout, out)
	})
	cmd.Flags().StringVar(&file, "file", "", "JSON settings file, - for standard input (required)")
	return cmd
}

func newSettingsGetCmd(o Opts) *cobra.Command {
	return stackCmd(o, &cobra.Command{
		Use:   "get STACK",
		Short: "Print a stack's deployment settings (secrets as their ciphertext only)",
	}, 1, nil, func(ctx context.Context, stack webhook.Scope, args []string, _ *engine.Engine, st store.Store) error {
		ds, err := st.DeploymentSettingsGet(ctx, stack)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("stack %s has no deployment settings: set them with `pulumi-webhooks deployments settings set %s --file FILE`", stack, args[0])
		}
		if err != nil {
			return err
		}
		out, err := api.SettingsFromStore(ds)
		if err != nil {
			return err
		}
		return printJSON(o.Stdout, out)
	})
}

func newSettingsDeleteCmd(o Opts) *cobra.Command {
	return stackCmd(o, &cobra.Command{
		Use:   "delete STACK",
		Short: "Delete a stack's deployment settings",
	}, 1, nil, func(ctx context.Context, stack webhook.Scope, _ []string, _ *engine.Engine, st store.Store) error {
		err := st.DeploymentSettingsDelete(ctx, stack)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("stack %s has no deployment settings", stack)
		}
		return err
	})
}

func newDeployCreateCmd(o Opts) *cobra.Command {
	var op string
	cmd := stackCmd(o, &cobra.Command{
		Use:   "create STACK --operation OP",
		Short: "Queue a deployment: update, preview, refresh, destroy, detect-drift or remediate-drift",
	}, 1, nil, func(ctx context.Context, stack webhook.Scope, _ []string, e *engine.Engine, st store.Store) error {
		if _, err := st.DeploymentSettingsGet(ctx, stack); errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("stack %s has no deployment settings: set them first with `pulumi-webhooks deployments settings set`", stack)
		} else if err != nil {
			return err
		}
		d, _, err := e.DeploymentCreate(ctx, engine.DeploymentCreateParams{Stack: stack, Operation: op, Source: engine.DeploymentSourceAPI})
		if err != nil {
			return flagErrors(err, map[string]string{"operation": "--operation"})
		}
		return printJSON(o.Stdout, api.CreateDeploymentResponse{ID: d.ID, Version: d.Version, Status: d.Status})
	})
	cmd.Flags().StringVar(&op, "operation", webhook.OperationUpdate, "operation: "+strings.Join(engine.Operations, ", "))
	return cmd
}

func newDeployListCmd(o Opts) *cobra.Command {
	var out outputOpts
	cmd := stackCmd(o, &cobra.Command{
		Use:   "list STACK",
		Short: "List a stack's deployments, newest first",
	}, 1, nil, func(ctx context.Context, stack webhook.Scope, _ []string, _ *engine.Engine, st store.Store) error {
		ds, err := st.DeploymentList(ctx, store.DeploymentListParams{Stack: stack})
		if err != nil {
			return err
		}
		list := api.DeploymentList{Deployments: []api.Deployment{}}
		var rows [][]string
		for _, d := range ds {
			list.Deployments = append(list.Deployments, api.FromDeployment(d))
			rows = append(rows, []string{strconv.Itoa(d.Version), d.Operation, d.Status, d.Source, d.ID, d.Reason})
		}
		if out.json {
			return printJSON(o.Stdout, list)
		}
		return printTable(o.Stdout, []string{"VERSION", "OPERATION", "STATUS", "SOURCE", "ID", "REASON"}, rows)
	})
	out.addFlags(cmd)
	return cmd
}

// findDeployment finds a stack's deployment by ID or version.
func findDeployment(ctx context.Context, e *engine.Engine, stack webhook.Scope, ref string) (*store.Deployment, error) {
	d, err := e.DeploymentFind(ctx, stack, ref)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("deployment %s of %s not found: list them with `pulumi-webhooks deployments list %s`", ref, stack, stack)
	}
	return d, err
}

// newDeployGetCmd is `get` (the deployment as JSON) or, with logs, `logs` (its output).
func newDeployGetCmd(o Opts, logs bool) *cobra.Command {
	use, short := "get STACK ID|VERSION", "Print a deployment as JSON"
	if logs {
		use, short = "logs STACK ID|VERSION", "Print a deployment's log (secrets redacted)"
	}
	return stackCmd(o, &cobra.Command{Use: use, Short: short}, 2, nil,
		func(ctx context.Context, stack webhook.Scope, args []string, e *engine.Engine, _ store.Store) error {
			d, err := findDeployment(ctx, e, stack, args[1])
			if err != nil {
				return err
			}
			if logs {
				_, err = io.WriteString(o.Stdout, d.Log)
				return err
			}
			return printJSON(o.Stdout, api.FromDeployment(d))
		})
}

func newDeployCancelCmd(o Opts) *cobra.Command {
	return stackCmd(o, &cobra.Command{
		Use:   "cancel STACK ID|VERSION",
		Short: "Cancel a deployment: one not started fails at once, a running one is stopped by its runner",
	}, 2, nil, func(ctx context.Context, stack webhook.Scope, args []string, e *engine.Engine, _ store.Store) error {
		before, err := findDeployment(ctx, e, stack, args[1])
		if err != nil {
			return err
		}
		d, err := e.DeploymentCancel(ctx, before)
		if errors.Is(err, engine.ErrDeploymentFinished) {
			return fmt.Errorf("deployment %s has already finished (%s): there is nothing to cancel", d.ID, d.Status)
		}
		if err != nil {
			return err
		}
		return printJSON(o.Stdout, api.FromDeployment(d))
	})
}

func newDriftCreateCmd(o Opts) *cobra.Command {
	var cron string
	var auto bool
	var now, next time.Time
	parse := func() (err error) {
		now = time.Now()
		if next, err = deploy.ParseCron(cron, now); err != nil {
			return fmt.Errorf("--cron: %w", err)
		}
		return nil
	}
	cmd := stackCmd(o, &cobra.Command{
		Use:   "create STACK --cron EXPR",
		Short: "Run drift detection of a stack on a cron schedule",
	}, 1, parse, func(ctx context.Context, stack webhook.Scope, _ []string, _ *engine.Engine, st store.Store) error {
		sc := &store.DriftSchedule{Stack: stack, ScheduleCron: cron, AutoRemediate: auto, NextRunAt: next, CreatedAt: now}
		if err := st.DriftScheduleCreate(ctx, sc); err != nil {
			return err
		}
		return printJSON(o.Stdout, api.FromDriftSchedule(sc))
	})
	cmd.Flags().StringVar(&cron, "cron", "", "cron expression: five fields, or six with leading seconds (required)")
	cmd.Flags().BoolVar(&auto, "auto-remediate", false, "remediate the drift found with `pulumi up --refresh`")
	return cmd
}

func newDriftListCmd(o Opts) *cobra.Command {
	return stackCmd(o, &cobra.Command{
		Use:   "list STACK",
		Short: "List a stack's drift schedules as JSON",
	}, 1, nil, func(ctx context.Context, stack webhook.Scope, _ []string, _ *engine.Engine, st store.Store) error {
		ss, err := st.DriftScheduleList(ctx, stack)
		if err != nil {
			return err
		}
		out := api.DriftScheduleList{Schedules: []api.DriftSchedule{}}
		for _, sc := range ss {
			out.Schedules = append(out.Schedules, api.FromDriftSchedule(sc))
		}
		return printJSON(o.Stdout, out)
	})
}

func newDriftDeleteCmd(o Opts) *cobra.Command {
	return stackCmd(o, &cobra.Command{
		Use:   "delete STACK ID",
		Short: "Delete a drift schedule",
	}, 2, nil, func(ctx context.Context, stack webhook.Scope, args []string, _ *engine.Engine, st store.Store) error {
		err := st.DriftScheduleDelete(ctx, stack, args[1])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("drift schedule %s of %s not found", args[1], stack)
		}
		return err
	})
}
