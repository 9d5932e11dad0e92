package cli

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
)

// EnvVerifySecret can hold verify's --secret, to keep it off the command line.
const EnvVerifySecret = EnvPrefix + "VERIFY_SECRET"

func newVerifyCmd(o Opts) *cobra.Command {
	var (
		out                    outputOpts
		secret, sig, id, stamp string
		tolerance              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "verify --secret S --signature SIG [--id ID --timestamp TS] < body",
		Short: "Check a delivery's signature against its body",
		Long: `verify reads a request body on standard input, exactly as received, and checks a
signature of it made with the webhook secret:

  - with --signature alone, the Pulumi-Webhook-Signature header (hex HMAC-SHA256 of the body);
  - with --id and --timestamp too, the Standard Webhooks headers webhook-signature,
    webhook-id and webhook-timestamp (the timestamp must be within --tolerance of now).

It prints "valid" and exits 0, or explains the mismatch and exits 1. Keep the secret off
the command line with ` + EnvVerifySecret + `.`,
		Example: `  printf '%s' "$BODY" | pulumi-webhooks verify --secret "$SECRET" --signature "$SIG"`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case secret == "":
				return fmt.Errorf("--secret is required: the webhook's secret (or set %s)", EnvVerifySecret)
			case sig == "":
				return errors.New("--signature is required: the Pulumi-Webhook-Signature (or, with --id and --timestamp, webhook-signature) header")
			case (id == "") != (stamp == ""):
				return errors.New("--id and --timestamp go together: give both (the webhook-id and webhook-timestamp headers) to check a Standard Webhooks signature, or neither")
			}
			body, err := io.ReadAll(o.Stdin)
			if err != nil {
				return fmt.Errorf("read the body from standard input: %w", err)
			}
			scheme := "pulumi"
			if id != "" {
				scheme = "standard"
				err = signature.VerifyStandard(secret, id, stamp, sig, body, time.Now(), tolerance)
			} else {
				err = signature.Verify(secret, sig, body)
			}
			if out.json {
				res := map[string]any{"valid": err == nil, "scheme": scheme}
				if err != nil {
					res["error"] = err.Error()
				}
				if perr := printJSON(o.Stdout, res); perr != nil {
					return perr
				}
				if err != nil {
					return &exitError{code: 1}
				}
				return nil
			}
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("signature is not valid (%d body bytes read): %v", len(body), err)}
			}
			fmt.Fprintln(o.Stdout, "valid")
			return nil
		},
	}
	out.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&secret, "secret", "", "the webhook's secret")
	withEnv(f, "secret", EnvVerifySecret)
	f.StringVar(&sig, "signature", "", "the signature header's value")
	f.StringVar(&id, "id", "", "the webhook-id header (Standard Webhooks)")
	f.StringVar(&stamp, "timestamp", "", "the webhook-timestamp header (Standard Webhooks)")
	f.DurationVar(&tolerance, "tolerance", signature.ToleranceDefault, "how far the timestamp may be from now (Standard Webhooks)")
	return cmd
}
