package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// hookJSON is a hook as `hooks list --json` prints it: the API's fields plus its ID and why
// the engine disabled it, if it did.
type hookJSON struct {
	ID string `json:"id"`
	api.WebhookResponse
	DisabledReason string `json:"disabledReason,omitempty"`
}

func newHooksCmd(o Opts) *cobra.Command {
	cmd := &cobra.Command{Use: "hooks", Short: "Inspect webhooks"}
	cmd.AddCommand(newHooksListCmd(o))
	return cmd
}

func newHooksListCmd(o Opts) *cobra.Command {
	var (
		so    storeOpts
		out   outputOpts
		scope webhook.Scope
		exact bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List webhooks: all, an organization's, or one stack's or environment's",
		Long: `list prints the webhooks in the store. Without flags it lists every webhook; --org lists
an organization's (of every scope, or with --exact only its organization webhooks);
--org with --project and --stack (or --environment) lists one stack's (or environment's).
The ID column is the HOOK argument of the other commands and the provider's resource ID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scope.Org == "" && scope != (webhook.Scope{}) {
				return errors.New("--org is required with --project, --stack or --environment")
			}
			p := store.HookListParams{Scope: scope, Exact: exact || scope.Project != ""}
			return withEngine(cmd.Context(), &so, nil, o.Version, func(e *engine.Engine, _ store.Store) error {
				hooks, err := e.HookList(cmd.Context(), p)
				if err != nil {
					return flagErrors(err, map[string]string{"organizationName": "--org", "projectName": "--project", "stackName": "--stack", "environmentName": "--environment"})
				}
				js := make([]hookJSON, 0, len(hooks))
				for _, h := range hooks {
					js = append(js, hookJSON{ID: formatHookID(h.Ref()), WebhookResponse: api.FromHook(h), DisabledReason: h.DisabledReason})
				}
				if out.json {
					return printJSON(o.Stdout, js)
				}
				rows := make([][]string, 0, len(js))
				for _, j := range js {
					active := strconv.FormatBool(j.Active)
					if j.DisabledReason != "" {
						active += " (" + j.DisabledReason + ")"
					}
					subs := append(append([]string{}, j.Filters...), j.Groups...)
					rows = append(rows, []string{j.ID, j.DisplayName, j.Format, active, strings.Join(subs, ","), j.PayloadURL})
				}
				return printTable(o.Stdout, []string{"ID", "DISPLAY NAME", "FORMAT", "ACTIVE", "FILTERS/GROUPS", "PAYLOAD URL"}, rows)
			})
		},
	}
	so.addFlags(cmd)
	out.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&scope.Org, "org", "", "only this organization's webhooks")
	f.StringVar(&scope.Project, "project", "", "with --stack or --environment: the project")
	f.StringVar(&scope.Stack, "stack", "", "only this stack's webhooks")
	f.StringVar(&scope.Environment, "environment", "", "only this environment's webhooks")
	f.BoolVar(&exact, "exact", false, "with --org alone: only organization webhooks, not its stacks' and environments'")
	return cmd
}

// attemptJSON is an attempt as the commands print it: the API's WebhookDelivery fields plus
// the attempt's own.
type attemptJSON struct {
	api.WebhookDelivery
	AttemptID int64  `json:"attemptId"`
	Attempt   int    `json:"attempt"`
	Filter    string `json:"filter"`
	Error     string `json:"error,omitempty"`
}

func toAttemptJSON(a *store.Attempt) attemptJSON {
	return attemptJSON{WebhookDelivery: api.FromAttempt(a), AttemptID: a.ID, Attempt: a.Number, Filter: string(a.Filter), Error: a.Error}
}

func printAttempts(w io.Writer, as []*store.Attempt, asJSON bool) error {
	js := make([]attemptJSON, 0, len(as))
	for _, a := range as {
		js = append(js, toAttemptJSON(a))
	}
	if asJSON {
		return printJSON(w, js)
	}
	rows := make([][]string, 0, len(as))
	for _, a := range as {
		code := ""
		if a.ResponseCode != 0 {
			code = strconv.Itoa(a.ResponseCode)
		}
		rows = append(rows, []string{strconv.FormatInt(a.ID, 10), a.DeliveryID, strconv.Itoa(a.Number), string(a.Filter),
			a.StartedAt.Local().Format(time.DateTime), a.Duration.Round(time.Millisecond).String(), code, a.Error})
	}
	return printTable(w, []string{"ATTEMPT", "DELIVERY", "#", "EVENT", "STARTED", "DURATION", "STATUS", "ERROR"}, rows)
}

func newDeliveriesCmd(o Opts) *cobra.Command {
	cmd := &cobra.Command{Use: "deliveries", Short: "Inspect delivery attempts"}
	var (
		so     storeOpts
		out    outputOpts
		limit  int
		before int64
	)
	list := &cobra.Command{
		Use:   "list HOOK",
		Short: "List a webhook's delivery attempts, newest first",
		Long: `list prints the recorded attempts of the webhook HOOK (` + hookIDForms + `),
newest first. The DELIVERY column is what ` + "`redeliver`" + ` takes. Page with --before, giving
the last ATTEMPT of the previous page.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseHookID(args[0])
			if err != nil {
				return err
			}
			return withEngine(cmd.Context(), &so, nil, o.Version, func(e *engine.Engine, _ store.Store) error {
				as, err := e.DeliveryLog(cmd.Context(), ref, engine.DeliveryLogParams{Limit: limit, Before: before})
				if err != nil {
					return hookError(args[0], flagErrors(err, map[string]string{"limit": "--limit", "before": "--before"}))
				}
				return printAttempts(o.Stdout, as, out.json)
			})
		},
	}
	so.addFlags(list)
	out.addFlags(list)
	list.Flags().IntVar(&limit, "limit", engine.DeliveryLogLimitDefault, "most attempts to print")
	list.Flags().Int64Var(&before, "before", 0, "print attempts older than this attempt ID")
	cmd.AddCommand(list)
	return cmd
}

func newRedeliverCmd(o Opts) *cobra.Command {
	var (
		so  storeOpts
		to  targetOpts
		out outputOpts
	)
	cmd := &cobra.Command{
		Use:   "redeliver HOOK DELIVERY",
		Short: "Send a recorded delivery again, now, and print the attempt",
		Long: `redeliver sends the delivery DELIVERY (an ID from ` + "`deliveries list`" + `) of webhook HOOK
again: the same body and Pulumi-Webhook-ID, to the webhook's current URL, signed with its
current secret. It exits 1 when the receiver does not answer 2xx.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseHookID(args[0])
			if err != nil {
				return err
			}
			return withEngine(cmd.Context(), &so, &to, o.Version, func(e *engine.Engine, _ store.Store) error {
				a, err := e.Redeliver(cmd.Context(), ref, args[1])
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("webhook %s or its delivery %q not found: see `pulumi-webhooks deliveries list %s`", args[0], args[1], args[0])
				}
				if err != nil {
					return flagErrors(err, map[string]string{"deliveryId": "DELIVERY"})
				}
				return reportAttempt(o, a, out.json)
			})
		},
	}
	so.addFlags(cmd)
	to.addFlags(cmd)
	out.addFlags(cmd)
	return cmd
}

func newPingCmd(o Opts) *cobra.Command {
	var (
		so  storeOpts
		to  targetOpts
		out outputOpts
	)
	cmd := &cobra.Command{
		Use:   "ping HOOK",
		Short: "Send a ping event to a webhook now and print the attempt",
		Long: `ping sends a ping event to the webhook HOOK (` + hookIDForms + `), whether it is
active or not, records the attempt in its delivery log and prints it. It exits 1 when the
receiver does not answer 2xx.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseHookID(args[0])
			if err != nil {
				return err
			}
			return withEngine(cmd.Context(), &so, &to, o.Version, func(e *engine.Engine, _ store.Store) error {
				a, err := e.Ping(cmd.Context(), ref)
				if err != nil {
					return hookError(args[0], flagErrors(err, nil))
				}
				return reportAttempt(o, a, out.json)
			})
		},
	}
	so.addFlags(cmd)
	to.addFlags(cmd)
	out.addFlags(cmd)
	return cmd
}

// reportAttempt prints one attempt and turns a failed one into exit code 1.
func reportAttempt(o Opts, a *store.Attempt, asJSON bool) error {
	if err := printAttempts(o.Stdout, []*store.Attempt{a}, asJSON); err != nil {
		return err
	}
	if a.ResponseCode >= 200 && a.ResponseCode < 300 {
		return nil
	}
	why := a.Error
	if why == "" {
		why = fmt.Sprintf("the receiver answered %d", a.ResponseCode)
	}
	return &exitError{code: 1, msg: "delivery attempt failed: " + why}
}
