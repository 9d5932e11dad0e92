// Command pulumi-webhooks-sdkgen writes the language SDKs of the pulumiservice provider
// (sdk/nodejs, sdk/python, sdk/go and sdk/dotnet) from the provider's schema.json with the
// Pulumi code generators, offline and reproducibly:
//
//	go run ./provider/cmd/pulumi-webhooks-sdkgen -schema schema.json -out sdk
//
// It gives every SDK a package name of its own (see languageSections) so that our SDKs can be
// installed next to the official ones, and it answers the C# generator's logo download from
// the logo.png beside this file instead of the network.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pulumi-webhooks-sdkgen:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pulumi-webhooks-sdkgen", flag.ContinueOnError)
	cfg := Config{}
	var languages string
	fs.StringVar(&cfg.SchemaPath, "schema", "schema.json", "the provider schema to generate from")
	fs.StringVar(&cfg.OutDir, "out", "sdk", "the directory that receives one subdirectory per language")
	fs.StringVar(&cfg.Version, "version", VersionDefault, "the SDK and plugin version, used when the schema names none")
	fs.StringVar(&languages, "languages", strings.Join(LanguagesDefault, ","), "comma-separated languages to generate")
	fs.BoolVar(&cfg.SkipGoModTidy, "skip-go-mod-tidy", false, "do not run go mod tidy in the Go SDK after writing it (keeps its go.sum; works offline)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %q: every setting is a flag (see -help)", fs.Args())
	}
	for _, l := range strings.Split(languages, ",") {
		if l = strings.TrimSpace(l); l != "" {
			cfg.Languages = append(cfg.Languages, l)
		}
	}
	return Generate(ctx, cfg)
}
