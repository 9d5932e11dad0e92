// Command refdocsgen regenerates the reference facts of package refdocs from Pulumi's reference
// documents, or checks that the checked-in facts still agree with them.
//
//	go run ./provider/internal/refdocs/refdocsgen -from DIR          # check
//	go run ./provider/internal/refdocs/refdocsgen -from DIR -write   # regenerate
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/refdocs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "refdocsgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("refdocsgen", flag.ContinueOnError)
	from := fs.String("from", "", "directory of the reference documents (required)")
	write := fs.Bool("write", false, "write the facts instead of checking them")
	out := fs.String("out", filepath.Join("provider", "internal", "refdocs", "testdata"), "where -write puts the facts")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return fmt.Errorf("-from is required: the directory that holds %s, %s and %s",
			refdocs.SourcePage, refdocs.SourceSchema, refdocs.SourceOpenAPI)
	}
	if !*write {
		stale, err := refdocs.Check(*from)
		if err != nil {
			return err
		}
		if len(stale) > 0 {
			return fmt.Errorf("the reference facts disagree with the documents in %s: %s; run `make reference REFERENCE=%s` and commit the result",
				*from, strings.Join(stale, ", "), *from)
		}
		fmt.Println("refdocsgen: the reference facts agree with", *from)
		return nil
	}
	facts, err := refdocs.Generate(*from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	for _, name := range refdocs.Names() {
		if err := os.WriteFile(filepath.Join(*out, name), facts[name], 0o644); err != nil {
			return err
		}
	}
	fmt.Println("refdocsgen: wrote", len(facts), "fact files to", *out)
	return nil
}
