// Package refdocs locates and reads the reference documents our compatibility tests compare
// against: the Pulumi Cloud webhook page, the official provider's Webhook schema and the Pulumi
// Cloud webhook OpenAPI document. They live outside the repository, in shared/reference beside
// the checkout (../shared/reference from the repository root); they are facts to match, never
// copied into the tree. Only tests import this package.
package refdocs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// EnvDir overrides where the reference documents are found.
const EnvDir = "PULUMI_WEBHOOKS_REFERENCE_DIR"

// The reference files.
const (
	WebhooksPage   = "pulumi-cloud-webhooks.md"
	ProviderSchema = "pulumiservice-v1.3.0-webhook-schema.json"
	OpenAPI        = "pulumi-cloud-webhooks-openapi.json"
)

// Dir returns the directory holding the reference documents.
func Dir() (string, error) {
	if d := os.Getenv(EnvDir); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			ref := filepath.Join(filepath.Dir(dir), "shared", "reference")
			if _, err := os.Stat(ref); err != nil {
				return "", fmt.Errorf("reference documents not found at %s (expected shared/reference beside the checkout): set %s to their directory", ref, EnvDir)
			}
			return ref, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod above %s: run the tests from inside the repository or set %s", wd, EnvDir)
		}
	}
}

// Path returns the path of one reference file.
func Path(name string) (string, error) {
	dir, err := Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// Read returns the contents of one reference file.
func Read(name string) ([]byte, error) {
	p, err := Path(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// PayloadExamples returns the JSON payload examples of the webhooks page, keyed by their
// heading ("Stack Creation", "Stack Update", "Stack Preview", "Deployment").
func PayloadExamples() (map[string][]byte, error) {
	page, err := Read(WebhooksPage)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	var heading string
	var block *bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(page))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case block != nil && strings.TrimSpace(line) == "```":
			if heading != "" {
				out[heading] = block.Bytes()
			}
			block, heading = nil, ""
		case block != nil:
			block.WriteString(line)
			block.WriteByte('\n')
		case strings.HasPrefix(line, "##### "):
			heading = strings.TrimSpace(strings.TrimPrefix(line, "##### "))
		case strings.TrimSpace(line) == "```json" && heading != "":
			block = &bytes.Buffer{}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no payload examples found in " + WebhooksPage)
	}
	return out, nil
}
