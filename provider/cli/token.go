package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func newTokenCmd(o Opts) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens",
		Long: `API tokens authenticate REST API requests ("Authorization: token <t>"). Each token
belongs to one organization and reaches only that organization's webhooks. Only a hash of
each token is stored.`,
	}
	cmd.AddCommand(newTokenCreateCmd(o), newTokenRevokeCmd(o), newTokenListCmd(o))
	return cmd
}

// tokenJSON is a token as the commands print it: never its hash.
type tokenJSON struct {
	ID          string     `json:"id"`
	Org         string     `json:"org"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	LastUsedAt  *time.Time `json:"lastUsedAt,omitempty"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
	// Token is set only by `token create`.
	Token string `json:"token,omitempty"`
}

func toTokenJSON(t *store.Token) tokenJSON {
	j := tokenJSON{ID: t.ID, Org: t.Org, Description: t.Description, CreatedAt: t.CreatedAt}
	if !t.LastUsedAt.IsZero() {
		j.LastUsedAt = &t.LastUsedAt
	}
	if !t.RevokedAt.IsZero() {
		j.RevokedAt = &t.RevokedAt
	}
	return j
}

func newTokenCreateCmd(o Opts) *cobra.Command {
	var (
		so         storeOpts
		out        outputOpts
		org, descr string
	)
	cmd := &cobra.Command{
		Use:   "create --org ORG",
		Short: "Create an API token for an organization and print it once",
		Long: `create makes a new API token for --org and prints it on standard output, once: only
its hash is stored, so it cannot be shown again. Its ID (for revoking it) goes to
standard error, or with --json everything is printed as one JSON object.`,
		Example: `  export PULUMI_WEBHOOKS_TOKEN=$(pulumi-webhooks token create --org acme --description ci)`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" {
				return errors.New("--org is required: name the organization the token may manage")
			}
			st, err := so.open(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			plain, t, err := server.IssueToken(cmd.Context(), st, server.IssueTokenParams{Org: org, Description: descr})
			if err != nil {
				return flagErrors(err, map[string]string{"organizationName": "--org", "description": "--description"})
			}
			if out.json {
				j := toTokenJSON(t)
				j.Token = plain
				return printJSON(o.Stdout, j)
			}
			fmt.Fprintln(o.Stdout, plain)
			fmt.Fprintf(o.Stderr, "Created token %s for organization %s. Keep it now: it is not shown again.\n", t.ID, t.Org)
			return nil
		},
	}
	so.addFlags(cmd)
	out.addFlags(cmd)
	cmd.Flags().StringVar(&org, "org", "", "organization the token may manage (required)")
	cmd.Flags().StringVar(&descr, "description", "", "what the token is for, shown by token list")
	return cmd
}

func newTokenRevokeCmd(o Opts) *cobra.Command {
	var so storeOpts
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API token; requests with it get 401 from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := so.open(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.TokenRevoke(cmd.Context(), args[0], time.Now().UTC()); err != nil {
				if errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("no token with ID %q: list the tokens with `pulumi-webhooks token list`", args[0])
				}
				return err
			}
			fmt.Fprintf(o.Stdout, "Revoked token %s.\n", args[0])
			return nil
		},
	}
	so.addFlags(cmd)
	return cmd
}

func newTokenListCmd(o Opts) *cobra.Command {
	var (
		so  storeOpts
		out outputOpts
		org string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API tokens (never the tokens themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := so.open(cmd.Context(), nil)
			if err != nil {
				return err
			}
			defer st.Close()
			ts, err := st.TokenList(cmd.Context(), org)
			if err != nil {
				return err
			}
			js := make([]tokenJSON, 0, len(ts))
			for _, t := range ts {
				js = append(js, toTokenJSON(t))
			}
			if out.json {
				return printJSON(o.Stdout, js)
			}
			rows := make([][]string, 0, len(js))
			for _, j := range js {
				rows = append(rows, []string{j.ID, j.Org, j.Description, j.CreatedAt.Format(time.RFC3339), timeOrEmpty(j.LastUsedAt), timeOrEmpty(j.RevokedAt)})
			}
			return printTable(o.Stdout, []string{"ID", "ORG", "DESCRIPTION", "CREATED", "LAST USED", "REVOKED"}, rows)
		},
	}
	so.addFlags(cmd)
	out.addFlags(cmd)
	cmd.Flags().StringVar(&org, "org", "", "list only this organization's tokens")
	return cmd
}

func timeOrEmpty(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}
