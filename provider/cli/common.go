package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/netguard"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storeloc"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Environment variables shared by several commands.
const (
	EnvStore        = storeloc.EnvStore
	EnvAllowTargets = EnvPrefix + "ALLOW_TARGETS"
	EnvOrgNames     = EnvPrefix + "ORG_DISPLAY_NAME"
)

// storeOpts locates the store; every command that touches it embeds it.
type storeOpts struct {
	path string
}

func (s *storeOpts) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.path, "store", "", "SQLite database file or postgres:// URL "+
		"(default $XDG_DATA_HOME/pulumi-webhooks/webhooks.db or ~/.local/share/pulumi-webhooks/webhooks.db)")
	withEnv(cmd.Flags(), "store", EnvStore)
}

// config is the storeloc configuration of the store these options name. The environment has
// already been applied to the flag (applyEnv), so the default is the SQLite default file.
func (s *storeOpts) config(log *slog.Logger, getenv func(string) string) storeloc.Config {
	return storeloc.Config{Location: s.path, Setting: storeloc.SettingDefault, Logger: log, Getenv: getenv}
}

// location resolves where the store is, for messages.
func (s *storeOpts) location() (storeloc.Location, error) {
	return storeloc.Resolve(s.config(nil, nil))
}

// open opens the store, creating it when it does not exist yet.
func (s *storeOpts) open(ctx context.Context, log *slog.Logger) (storeloc.Store, error) {
	return storeloc.Open(ctx, s.config(log, nil))
}

// targetOpts lists the addresses deliveries may reach beyond public ones.
type targetOpts struct {
	allow []string
}

func (t *targetOpts) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&t.allow, "allow-target", nil,
		"CIDR prefix or address deliveries may reach although it is private or loopback (repeatable, or comma-separated)")
	withEnv(cmd.Flags(), "allow-target", EnvAllowTargets)
}

func (t *targetOpts) prefixes() ([]netip.Prefix, error) {
	if len(t.allow) == 0 {
		return nil, nil
	}
	p, err := netguard.ParsePrefixes(t.allow)
	if err != nil {
		return nil, fmt.Errorf("--allow-target: %w", err)
	}
	return p, nil
}

// orgNameOpts are the organizations' display names: the organization.name of the payloads of
// the events a command fires. Every command that fires events (serve, emit, pulumi) takes them,
// so that an event says the same whichever command fired it.
type orgNameOpts struct {
	settings []string
}

func (n *orgNameOpts) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&n.settings, "org-display-name", nil,
		"ORG=NAME: the display name the payloads of organization ORG give as organization.name, e.g. acme='Acme Corp' "+
			"(repeatable; the variable holds one setting per line)")
	withEnv(cmd.Flags(), "org-display-name", EnvOrgNames)
}

// names returns the display names the flags give; a setting may hold several lines (the
// environment variable's form), one ORG=NAME each, as a display name has no line breaks.
func (n *orgNameOpts) names() (webhook.OrgDisplayNames, error) {
	var settings []string
	for _, s := range n.settings {
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSuffix(line, "\r"); strings.TrimSpace(line) != "" {
				settings = append(settings, line)
			}
		}
	}
	names, err := webhook.ParseOrgDisplayNames(settings)
	if err != nil {
		return nil, fmt.Errorf("--org-display-name (or %s): %w", EnvOrgNames, err)
	}
	return names, nil
}

// withEngine opens the store and an engine on it (without delivery workers), runs fn, and
// closes the store.
func withEngine(ctx context.Context, so *storeOpts, to *targetOpts, version string, fn func(*engine.Engine, store.Store) error) (err error) {
	return withEngineNames(ctx, so, to, nil, version, fn)
}

// withEngineNames is withEngine for commands that fire events: the engine gives the
// organizations the display names of no (nil).
func withEngineNames(ctx context.Context, so *storeOpts, to *targetOpts, no *orgNameOpts, version string, fn func(*engine.Engine, store.Store) error) (err error) {
	log := slog.New(slog.DiscardHandler)
	cfg := engine.Config{Logger: log, Version: version}
	if no != nil {
		if cfg.OrgDisplayNames, err = no.names(); err != nil {
			return err
		}
	}
	if to != nil {
		if cfg.AllowTargets, err = to.prefixes(); err != nil {
			return err
		}
	}
	st, err := so.open(ctx, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	cfg.Store = st
	e, err := engine.New(cfg)
	if err != nil {
		return err
	}
	return fn(e, st)
}

// outputOpts chooses between a table for people and JSON for scripts.
type outputOpts struct {
	json bool
}

func (o *outputOpts) addFlags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON instead of a table")
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable prints rows under header, aligned in columns. Control, zero-width and
// text-direction characters in a cell are printed as escapes (\x1b, \u202e), never raw: a
// value stored before the validation rules, or by another tool, cannot rewrite the terminal
// or break the table.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		for i, c := range r {
			if c == "" {
				r[i] = "-"
			}
			r[i] = webhook.Printable(r[i])
		}
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// flagErrors renames the fields of validation errors to the flags that set them, both where
// an error names its field and where its fix mentions another field. An indexed field
// ("filters[1]") maps through its base name ("filters"); the messages quote the bad value.
func flagErrors(err error, flags map[string]string) error {
	var fe webhook.FieldErrors
	if !errors.As(err, &fe) {
		return err
	}
	return errors.New(strings.Join(flagMessages(fe, flags), "; "))
}

// flagMessages renders field errors as flagErrors does, one message each.
func flagMessages(fe webhook.FieldErrors, flags map[string]string) []string {
	msgs := make([]string, len(fe))
	for i, e := range fe {
		name := e.Field
		head, rest, nested := strings.Cut(name, ".")
		base, _, _ := strings.Cut(head, "[")
		if f, ok := flags[base]; ok {
			name = f
			if nested {
				name += " field " + rest // e.g. payload.user -> --payload field user
			}
		}
		msgs[i] = name + ": " + renameFields(e.Message, flags)
	}
	return msgs
}

// fieldWord matches an API field name mentioned in a validation message.
var fieldWord = regexp.MustCompile(`\b[a-z]+[A-Z][A-Za-z]*\b`)

// renameFields replaces the camelCase API field names msg mentions with their flags.
func renameFields(msg string, flags map[string]string) string {
	if len(flags) == 0 {
		return msg
	}
	return fieldWord.ReplaceAllStringFunc(msg, func(w string) string {
		if f, ok := flags[w]; ok {
			return f
		}
		return w
	})
}

// hookIDForms lists the webhook IDs HOOK arguments take: the provider's resource IDs.
const hookIDForms = webhook.HookIDForms

// parseHookID reads a HOOK argument.
func parseHookID(id string) (store.HookRef, error) {
	scope, name, err := webhook.ParseHookID(id)
	if err != nil {
		return store.HookRef{}, fmt.Errorf("HOOK: %w", err)
	}
	return store.HookRef{Scope: scope, Name: name}, nil
}

// formatHookID is the inverse of parseHookID.
func formatHookID(ref store.HookRef) string { return webhook.FormatHookID(ref.Scope, ref.Name) }

// hookError explains a missing hook in terms of the command line.
func hookError(id string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("webhook %s not found: list the webhooks with `pulumi-webhooks hooks list`", id)
	}
	return err
}

// describe says where the store is, fit for logs (a URL's password masked).
func (s *storeOpts) describe() string {
	loc, err := s.location()
	if err != nil {
		return "(unknown)"
	}
	return loc.String()
}
