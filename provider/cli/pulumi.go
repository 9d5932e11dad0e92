package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/watch"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The operations the wrapper reports, by pulumi's command names.
var (
	wrapPreview = map[string]bool{"preview": true, "pre": true}
	wrapRuns    = map[string]bool{"up": true, "update": true, "refresh": true, "destroy": true, "down": true, "import": true}
	// wrapEventLog: the commands that take --event-log.
	wrapEventLog = map[string]bool{"preview": true, "pre": true, "up": true, "update": true, "refresh": true, "destroy": true, "down": true}
)

type pulumiOpts struct {
	so     storeOpts
	names  orgNameOpts
	org    string
	pulumi string
}

func newPulumiCmd(o Opts) *cobra.Command {
	var po pulumiOpts
	cmd := &cobra.Command{
		Use:   "pulumi [flags] -- PULUMI-ARGS...",
		Short: "Run pulumi and fire the events of what it did, previews included",
		Long: `pulumi runs the real pulumi CLI with PULUMI-ARGS, its input, output, exit code and
signals passed through unchanged (SIGTERM and SIGHUP are forwarded; SIGINT too, unless
standard input is a terminal, whose Ctrl-C reaches pulumi directly), then fires the event
of what it did, stored with a delivery for every matching webhook as ` + "`emit`" + ` does:

  preview              preview_succeeded or preview_failed, with the resource changes
                       from the engine's event log (--event-log, as the Automation API
                       reads it); self-managed backends record nothing for a preview
  up, refresh,         the event of the history entry the run wrote, exactly as
  destroy, import      ` + "`serve --watch`" + ` emits it, with the same idempotency key:
                       wrapper and watcher together still fire it once

It works with every self-managed backend (file://, s3://, gs://, azblob://, postgres://).
Against Pulumi Cloud it only runs pulumi: the Cloud fires its own webhooks.`,
		Example: `  pulumi-webhooks pulumi -- preview --stack dev
  pulumi-webhooks pulumi -- up --yes --stack dev`,
		Args:               cobra.MinimumNArgs(1),
		DisableFlagParsing: false,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Refuse bad display names before pulumi runs, not after.
			if _, err := po.names.names(); err != nil {
				return err
			}
			return runPulumi(cmd.Context(), o, po, args)
		},
	}
	po.so.addFlags(cmd)
	po.names.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&po.org, "org", watch.OrgDefault, "organization of the events")
	f.StringVar(&po.pulumi, "pulumi-bin", "pulumi", "the pulumi executable")
	withEnv(f, "org", EnvPrefix+"WATCH_ORG")
	return cmd
}

// pulumiCall is what the wrapper learns from the arguments.
type pulumiCall struct {
	op    string // the pulumi command: up, preview, ...
	stack string // --stack / -s, "" for the selected stack
	cwd   string // --cwd / -C
}

// parsePulumiArgs finds the command and the flags that say where it ran. It reads flags
// before and after the command; values of other flags are never taken for the command
// because pulumi's global flags that take values are known.
func parsePulumiArgs(args []string) pulumiCall {
	var c pulumiCall
	valued := map[string]bool{"--cwd": true, "-C": true, "--stack": true, "-s": true, "--color": true,
		"--verbose": true, "-v": true, "--tracing": true, "--profiling": true, "--memprofilerate": true,
		"--config-file": true, "--logflow": false}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		name, value, hasValue := strings.Cut(a, "=")
		switch {
		case name == "--stack" || name == "-s":
			if hasValue {
				c.stack = value
			} else if i+1 < len(args) {
				c.stack = args[i+1]
				i++
			}
		case name == "--cwd" || name == "-C":
			if hasValue {
				c.cwd = value
			} else if i+1 < len(args) {
				c.cwd = args[i+1]
				i++
			}
		case strings.HasPrefix(a, "-"):
			if valued[a] && i+1 < len(args) {
				i++
			}
		case c.op == "":
			c.op = a
		}
	}
	return c
}

func runPulumi(ctx context.Context, o Opts, po pulumiOpts, args []string) error {
	call := parsePulumiArgs(args)
	bin, err := exec.LookPath(po.pulumi)
	if err != nil {
		return fmt.Errorf("--pulumi-bin %s: %w: install pulumi or give its path", po.pulumi, err)
	}
	env := os.Environ()
	var eventLog string
	if wrapEventLog[call.op] && !hasFlag(args, "--event-log") {
		dir, err := os.MkdirTemp("", "pulumi-webhooks-events-")
		if err != nil {
			return fmt.Errorf("create the event log's folder: %w", err)
		}
		defer os.RemoveAll(dir)
		eventLog = filepath.Join(dir, "events.jsonl")
		args = append(args, "--event-log", eventLog)
		// --event-log is one of the commands' debug flags, as the Automation API uses it.
		env = append(env, "PULUMI_DEBUG_COMMANDS=true")
	}
	started := time.Now()
	code, err := runChild(ctx, o, bin, args, env)
	if err != nil {
		return err
	}
	if wrapPreview[call.op] || wrapRuns[call.op] {
		if err := reportPulumi(ctx, o, po, bin, call, eventLog, code, started); err != nil {
			// pulumi's own outcome stands: the report is a warning on stderr.
			fmt.Fprintf(o.Stderr, "pulumi-webhooks: no event fired: %v\n", err)
		}
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

// runChild runs pulumi with the wrapper's standard streams and forwards signals; it returns
// pulumi's exit code (128+signal when a signal ended it, as shells report).
func runChild(ctx context.Context, o Opts, bin string, args, env []string) (int, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = o.Stdin, o.Stdout, o.Stderr, env
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run %s: %w", bin, err)
	}
	stdinTTY := false
	if f, ok := o.Stdin.(*os.File); ok {
		stdinTTY = term.IsTerminal(int(f.Fd()))
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGINT && stdinTTY {
					continue // the terminal sent it to pulumi too
				}
				_ = cmd.Process.Signal(s)
			case <-ctx.Done():
				_ = cmd.Process.Signal(syscall.SIGTERM)
				return
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("run %s: %w", bin, err)
}

// reportPulumi fires the event of the run that just ended.
func reportPulumi(ctx context.Context, o Opts, po pulumiOpts, bin string, call pulumiCall, eventLog string, code int, started time.Time) error {
	backendURL, err := pulumiBackend(ctx, bin, call)
	if err != nil {
		return err
	}
	if strings.HasPrefix(backendURL, "https://") || strings.HasPrefix(backendURL, "http://") {
		return nil // Pulumi Cloud (or a self-hosted service) fires its own webhooks
	}
	project, stack, err := pulumiStack(ctx, bin, call)
	if err != nil {
		return err
	}
	var p engine.EmitParams
	summary, engineRan, err := readEventLog(eventLog)
	if err != nil {
		return err
	}
	switch {
	case wrapPreview[call.op] || (summary != nil && summary.IsPreview):
		if !engineRan {
			return nil // pulumi stopped before the engine started: nothing was previewed
		}
		p = previewParams(po.org, project, stack, summary, code, call.cwd)
	default:
		b, err := watch.OpenBackend(ctx, backendURL)
		if err != nil {
			return err
		}
		defer b.Close()
		e, err := b.LatestEntry(ctx, watch.StackRef{Project: project, Name: stack}, started)
		if err != nil || e == nil {
			return err
		}
		if u, err := user.Current(); err == nil {
			e.RunBy = u.Username // used when the entry names no git user
		}
		var ok bool
		p, ok, err = e.EmitParams(po.org)
		if err != nil || !ok {
			return err
		}
	}
	return withEngineNames(ctx, &po.so, nil, &po.names, o.Version, func(e *engine.Engine, _ store.Store) error {
		_, err := e.Emit(ctx, p)
		return err
	})
}

// pulumiBackend asks pulumi which backend it is logged in to.
func pulumiBackend(ctx context.Context, bin string, call pulumiCall) (string, error) {
	out, err := pulumiOutput(ctx, bin, call, "whoami", "--output", "json")
	if err != nil {
		return "", err
	}
	var who struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(out, &who); err != nil || who.URL == "" {
		return "", fmt.Errorf("pulumi whoami did not name the backend: %s", strings.TrimSpace(string(out)))
	}
	return who.URL, nil
}

// pulumiStack asks pulumi for the stack's fully qualified name.
func pulumiStack(ctx context.Context, bin string, call pulumiCall) (project, stack string, err error) {
	args := []string{"stack", "--show-name", "--fully-qualify-stack-names"}
	if call.stack != "" {
		args = append(args, "--stack", call.stack)
	}
	out, err := pulumiOutput(ctx, bin, call, args...)
	if err != nil {
		return "", "", err
	}
	parts := strings.Split(strings.TrimSpace(string(out)), "/")
	if len(parts) != 3 {
		return "", "", fmt.Errorf("pulumi stack --show-name said %q, not organization/project/stack", strings.TrimSpace(string(out)))
	}
	return parts[1], parts[2], nil
}

func pulumiOutput(ctx context.Context, bin string, call pulumiCall, args ...string) ([]byte, error) {
	if call.cwd != "" {
		args = append([]string{"--cwd", call.cwd}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "--non-interactive")...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("pulumi %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// readEventLog returns the summary event of an engine event log, and whether the engine ran
// at all (any event).
func readEventLog(path string) (*apitype.SummaryEvent, bool, error) {
	if path == "" {
		return nil, false, nil
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the engine's event log: %w", err)
	}
	defer f.Close()
	var summary *apitype.SummaryEvent
	ran := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		var ev apitype.EngineEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // a line cut short by a crash: the rest still counts
		}
		ran = true
		if ev.SummaryEvent != nil {
			summary = ev.SummaryEvent
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, false, fmt.Errorf("read the engine's event log: %w", err)
	}
	return summary, ran, nil
}

// previewParams is the preview event: its result from pulumi's exit code, its counts from
// the summary, its user from git or the OS.
func previewParams(org, project, stack string, s *apitype.SummaryEvent, code int, cwd string) engine.EmitParams {
	f, result := webhook.PreviewSucceeded, webhook.ResultSucceeded
	if code != 0 || (s != nil && s.Result != "" && s.Result != apitype.OperationResultSucceeded) {
		f, result = webhook.PreviewFailed, webhook.ResultFailed
	}
	changes := map[string]int{}
	if s != nil {
		for op, n := range s.ResourceChanges {
			changes[string(op)] = n
		}
	}
	raw, _ := json.Marshal(map[string]any{
		"user": webhook.User{Name: runUser(cwd)}, "kind": webhook.UpdateKindUpdate, "result": result, "resourceChanges": changes,
	})
	return engine.EmitParams{Filter: f, Subject: webhook.Scope{Org: org, Project: project, Stack: stack}, Overrides: raw}
}

// runUser is who ran pulumi: the git author of HEAD where the program is (as Pulumi records
// it for updates), else the OS user.
func runUser(cwd string) string {
	args := []string{"log", "-1", "--format=%an"}
	if cwd != "" {
		args = append([]string{"-C", cwd}, args...)
	}
	if out, err := exec.Command("git", args...).Output(); err == nil {
		if name := strings.TrimSpace(string(out)); name != "" {
			return name
		}
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}
