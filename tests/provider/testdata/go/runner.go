// Command runner runs one Automation API operation on an inline program: the example's
// program function, compiled into this binary. The CLI runs it with --client, so no Go
// language host is used.
//
//	runner '<params JSON>'   prints {"changes": {...}, "outputs": {...}} on stdout
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
)

type params struct {
	Action  string `json:"action"`
	WorkDir string `json:"workDir"`
	Project string `json:"project"`
	Stack   string `json:"stack"`
	Config  map[string]struct {
		Value  string `json:"value"`
		Secret bool   `json:"secret"`
	} `json:"config"`
}

type result struct {
	Changes map[string]int `json:"changes"`
	Outputs map[string]any `json:"outputs,omitempty"`
}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "runner failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: runner '<params JSON>'")
	}
	var p params
	if err := json.Unmarshal([]byte(os.Args[1]), &p); err != nil {
		return fmt.Errorf("decode params: %w", err)
	}
	stack, err := auto.UpsertStackInlineSource(ctx, p.Stack, p.Project, program, auto.WorkDir(p.WorkDir))
	if err != nil {
		return fmt.Errorf("select stack: %w", err)
	}
	cfg := auto.ConfigMap{}
	for k, v := range p.Config {
		cfg[k] = auto.ConfigValue{Value: v.Value, Secret: v.Secret}
	}
	if err := stack.SetAllConfig(ctx, cfg); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	var res result
	switch p.Action {
	case "up":
		r, err := stack.Up(ctx, optup.ErrorProgressStreams(os.Stderr), optup.ProgressStreams(os.Stderr))
		if err != nil {
			return fmt.Errorf("up: %w", err)
		}
		res.Changes = *r.Summary.ResourceChanges
		res.Outputs = map[string]any{}
		for k, v := range r.Outputs {
			res.Outputs[k] = v.Value
		}
	case "preview":
		r, err := stack.Preview(ctx, optpreview.ExpectNoChanges(), optpreview.ProgressStreams(os.Stderr))
		if err != nil {
			return fmt.Errorf("preview: %w", err)
		}
		res.Changes = map[string]int{}
		for op, n := range r.ChangeSummary {
			res.Changes[string(op)] = n
		}
	case "destroy":
		r, err := stack.Destroy(ctx, optdestroy.ProgressStreams(os.Stderr))
		if err != nil {
			return fmt.Errorf("destroy: %w", err)
		}
		res.Changes = *r.Summary.ResourceChanges
	default:
		return fmt.Errorf("unknown action %q: use up, preview or destroy", p.Action)
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
