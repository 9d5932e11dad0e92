package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
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
	cmd := &cobra.Command{Use: "hooks", Short: "List, create and delete webhooks"}
	cmd.AddCommand(newHooksListCmd(o), newHooksCreateCmd(o), newHooksDeleteCmd(o))
	return cmd
}

// EnvHookSecret holds the secret `hooks create` gives the new webhook, for scripts that cannot
// pipe it to --secret-stdin. The secret is never a flag value, which `ps` would show.
const EnvHookSecret = EnvPrefix + "HOOK_SECRET"

// hookFlags maps the fields of a webhook spec to the flags of `hooks create` that set them.
var hookFlags = map[string]string{
	"organizationName": "--org",
	"projectName":      "--project",
	"stackName":        "--stack",
	"environmentName":  "--environment",
	"name":             "--name",
	"displayName":      "--display-name",
	"payloadUrl":       "--url",
	"format":           "--format",
	"filters":          "--filter",
	"groups":           "--group",
	"secret":           "--secret-stdin",
}

func newHooksCreateCmd(o Opts) *cobra.Command {
	var (
		so          storeOpts
		out         outputOpts
		spec        webhook.Spec
		format      string
		filters     []string
		groups      []string
		inactive    bool
		secretStdin bool
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a webhook of an organization, a stack or an environment",
		Long: `create adds a webhook to the store, as the REST API's create does: an organization
webhook with --org alone, a stack webhook with --project and --stack, or an environment
webhook with --project and --environment. Without --name a name is generated. Without
--filter and --group the webhook receives every event of its scope.

The secret that signs deliveries is read from standard input with --secret-stdin (one line;
a trailing newline is dropped) or from ` + EnvHookSecret + `; it is never a flag value, and
never printed. The command prints the webhook's ID (` + hookIDForms + `),
which the other commands take as HOOK and ` + "`pulumi import`" + ` takes as the resource ID.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.Format = webhook.Format(format)
			spec.Active = !inactive
			spec.Filters = make([]webhook.Filter, len(filters))
			for i, f := range filters {
				spec.Filters[i] = webhook.Filter(f)
			}
			spec.Groups = make([]webhook.Group, len(groups))
			for i, g := range groups {
				spec.Groups[i] = webhook.Group(g)
			}
			secret, err := readHookSecret(o, secretStdin)
			if err != nil {
				return err
			}
			spec.Secret = secret
			return withEngine(cmd.Context(), &so, nil, o.Version, func(e *engine.Engine, _ store.Store) error {
				h, err := e.HookCreate(cmd.Context(), spec)
				if errors.Is(err, store.ErrAlreadyExists) {
					id := formatHookID(store.HookRef{Scope: spec.Scope, Name: spec.Name})
					return fmt.Errorf("--name: webhook %s already exists: choose another --name, or delete it first with `pulumi-webhooks hooks delete %s`", id, id)
				}
				if err != nil {
					return flagErrors(err, hookFlags)
				}
				// Accepted, as Pulumi Cloud accepts it, but probably a mistake: say so.
				shown, more := spec.Advise().Reported()
				for _, m := range flagMessages(shown, hookFlags) {
					fmt.Fprintln(o.Stderr, "warning: "+m)
				}
				if more > 0 {
					fmt.Fprintf(o.Stderr, "warning: and %d more such entries\n", more)
				}
				id := formatHookID(h.Ref())
				if out.json {
					return printJSON(o.Stdout, hookJSON{ID: id, WebhookResponse: api.FromHook(h)})
				}
				_, err = fmt.Fprintln(o.Stdout, id)
				return err
			})
		},
	}
	so.addFlags(cmd)
	out.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&spec.Org, "org", "", "organization that owns the webhook (required)")
	f.StringVar(&spec.Project, "project", "", "with --stack or --environment: its project")
	f.StringVar(&spec.Stack, "stack", "", "make a stack webhook of this stack")
	f.StringVar(&spec.Environment, "environment", "", "make an environment webhook of this ESC environment")
	f.StringVar(&spec.Name, "name", "", "name within its scope (default: generated)")
	f.StringVar(&spec.DisplayName, "display-name", "", "human-readable name (required)")
	f.StringVar(&spec.PayloadURL, "url", "", "URL that receives deliveries; PROJECT/STACK for --format pulumi_deployments (required)")
	f.StringVar(&format, "format", string(webhook.FormatDefault), "payload format: raw, slack, ms_teams or pulumi_deployments")
	f.StringArrayVar(&filters, "filter", nil, "event to deliver, e.g. update_succeeded (repeatable)")
	f.StringArrayVar(&groups, "group", nil, "event group to deliver: stacks, deployments or environments (repeatable)")
	f.BoolVar(&inactive, "inactive", false, "create the webhook inactive: it receives nothing until activated")
	f.BoolVar(&secretStdin, "secret-stdin", false, "read the signing secret from standard input (or set "+EnvHookSecret+")")
	return cmd
}

// readHookSecret returns the secret for a new webhook: standard input with --secret-stdin,
// else EnvHookSecret, else none.
func readHookSecret(o Opts, fromStdin bool) (string, error) {
	if !fromStdin {
		return o.Getenv(EnvHookSecret), nil
	}
	b, err := io.ReadAll(io.LimitReader(o.Stdin, secretMaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("--secret-stdin: read standard input: %w", err)
	}
	if len(b) > secretMaxBytes {
		return "", fmt.Errorf("--secret-stdin: the secret is longer than %d bytes: give a shorter one", secretMaxBytes)
	}
	secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if secret == "" {
		return "", errors.New("--secret-stdin: standard input is empty: pipe the secret in, e.g. `printf %s \"$SECRET\" | pulumi-webhooks hooks create --secret-stdin ...`, or leave out --secret-stdin for a webhook without a secret")
	}
	if strings.ContainsAny(secret, "\r\n") {
		return "", errors.New("--secret-stdin: the secret spans several lines: give it on one line")
	}
	return secret, nil
}

// secretMaxBytes bounds a secret read from standard input.
const secretMaxBytes = 4096

func newHooksDeleteCmd(o Opts) *cobra.Command {
	var so storeOpts
	cmd := &cobra.Command{
		Use:   "delete HOOK",
		Short: "Delete a webhook and its delivery log",
		Long: `delete removes the webhook HOOK (` + hookIDForms + `)
from the store together with its delivery log; deliveries not yet sent to it are dropped.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseHookID(args[0])
			if err != nil {
				return err
			}
			return withEngine(cmd.Context(), &so, nil, o.Version, func(e *engine.Engine, _ store.Store) error {
				if err := e.HookDelete(cmd.Context(), ref); err != nil {
					return hookError(args[0], flagErrors(err, nil))
				}
				_, err := fmt.Fprintln(o.Stdout, "deleted "+args[0])
				return err
			})
		},
	}
	so.addFlags(cmd)
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
		all    bool
		size   int
	)
	list := &cobra.Command{
		Use:   "list HOOK",
		Short: "List a webhook's delivery attempts, newest first",
		Long: `list prints the recorded attempts of the webhook HOOK (` + hookIDForms + `),
newest first: the newest --limit, or with --all every one. The DELIVERY column is what
` + "`redeliver`" + ` takes. When older attempts exist, a note on standard error gives the
--before of the next page, the last ATTEMPT of this one.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseHookID(args[0])
			if err != nil {
				return err
			}
			if all && cmd.Flags().Changed("limit") {
				return errors.New("--all prints every attempt, so --limit cannot be given with it: give one of them")
			}
			if !all && cmd.Flags().Changed("page-size") {
				return errors.New("--page-size is how many attempts --all reads at a time: give it with --all, or use --limit")
			}
			if all && (size < 1 || size > engine.DeliveryLogLimitMax) {
				return fmt.Errorf("--page-size: is %d: give a number from 1 to %d", size, engine.DeliveryLogLimitMax)
			}
			limitFlag := "--limit"
			return withEngine(cmd.Context(), &so, nil, o.Version, func(e *engine.Engine, _ store.Store) error {
				p := engine.DeliveryLogParams{Limit: limit, Before: before}
				if all {
					p.Limit, limitFlag = size, "--page-size"
				}
				var as []*store.Attempt
				for {
					page, err := e.DeliveryLogPage(cmd.Context(), ref, p)
					if err != nil {
						return hookError(args[0], flagErrors(err, map[string]string{"limit": limitFlag, "before": "--before"}))
					}
					as = append(as, page.Attempts...)
					if page.Next == 0 {
						break
					}
					if !all {
						fmt.Fprintf(o.Stderr, "older attempts exist: --before %d shows the next page, --all every attempt\n", page.Next)
						break
					}
					p.Before = page.Next
				}
				return printAttempts(o.Stdout, as, out.json)
			})
		},
	}
	so.addFlags(list)
	out.addFlags(list)
	list.Flags().IntVar(&limit, "limit", engine.DeliveryLogLimitDefault, fmt.Sprintf("most attempts to print (1 to %d)", engine.DeliveryLogLimitMax))
	list.Flags().Int64Var(&before, "before", 0, "print attempts older than this attempt ID")
	list.Flags().BoolVar(&all, "all", false, "print every attempt (older than --before, if given), following the pages")
	list.Flags().IntVar(&size, "page-size", engine.DeliveryLogLimitMax, fmt.Sprintf("with --all: how many attempts to read at a time (1 to %d)", engine.DeliveryLogLimitMax))
	cmd.AddCommand(list)
	return cmd
}

func newRedeliverCmd(o Opts) *cobra.Command {
	return newAttemptCmd(o, &cobra.Command{
		Use:   "redeliver HOOK DELIVERY",
		Short: "Send a recorded delivery again, now, and print the attempt",
		Long: `redeliver sends the delivery DELIVERY (an ID from ` + "`deliveries list`" + `) of webhook HOOK
again: the same body and Pulumi-Webhook-ID, to the webhook's current URL, signed with its
current secret. It exits 1 when the receiver does not answer 2xx.`,
		Args: cobra.ExactArgs(2),
	}, func(ctx context.Context, e *engine.Engine, ref store.HookRef, args []string) (*store.Attempt, error) {
		a, err := e.Redeliver(ctx, ref, args[1])
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("webhook %s or its delivery %q not found: see `pulumi-webhooks deliveries list %s`", args[0], args[1], args[0])
		}
		if err != nil {
			return nil, flagErrors(err, map[string]string{"deliveryId": "DELIVERY"})
		}
		return a, nil
	})
}

func newPingCmd(o Opts) *cobra.Command {
	return newAttemptCmd(o, &cobra.Command{
		Use:   "ping HOOK",
		Short: "Send a ping event to a webhook now and print the attempt",
		Long: `ping sends a ping event to the webhook HOOK (` + hookIDForms + `), whether it is
active or not, records the attempt in its delivery log and prints it. It exits 1 when the
receiver does not answer 2xx.`,
		Args: cobra.ExactArgs(1),
	}, func(ctx context.Context, e *engine.Engine, ref store.HookRef, args []string) (*store.Attempt, error) {
		a, err := e.Ping(ctx, ref)
		if err != nil {
			return nil, hookError(args[0], flagErrors(err, nil))
		}
		return a, nil
	})
}

// newAttemptCmd completes cmd, whose first argument is a hook ID, into a command that makes one
// attempt now on the store's engine with attempt, then prints it (exit 1 unless it got a 2xx).
func newAttemptCmd(o Opts, cmd *cobra.Command, attempt func(ctx context.Context, e *engine.Engine, ref store.HookRef, args []string) (*store.Attempt, error)) *cobra.Command {
	var (
		so  storeOpts
		to  targetOpts
		out outputOpts
	)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		ref, err := parseHookID(args[0])
		if err != nil {
			return err
		}
		return withEngine(cmd.Context(), &so, &to, o.Version, func(e *engine.Engine, _ store.Store) error {
			a, err := attempt(cmd.Context(), e, ref, args)
			if err != nil {
				return err
			}
			return reportAttempt(o, a, out.json)
		})
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
	if a.Succeeded() {
		return nil
	}
	why := a.Error
	if why == "" {
		why = fmt.Sprintf("the receiver answered %d", a.ResponseCode)
	}
	return &exitError{code: 1, msg: "delivery attempt failed: " + why}
}
