package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// screenshotsEnv, when set to 1, makes TestBrowser write its screenshots into screenshots/
// (the README shows them); otherwise they go to a temporary directory.
const screenshotsEnv = "PULUMI_WEBHOOKS_SCREENSHOTS"

// browser starts Debian's chromium, headless, with a fresh profile, and returns a tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run tests/deps.sh as root (apt-get install -y chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 768),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), waitfor.Limit)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelTimeout()
	})
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return tab
}

func run(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, tab context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	return get(t, tab, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// TestBrowser drives the console in a real Chromium against a real server and receiver: sign
// in, see a hook, create one through the form (bad input first), fire an event, open its
// delivery, press Redeliver and see the same body arrive again with a new attempt listed; open
// a deployment's log from its stack; then another organization's token sees none of it.
func TestBrowser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createHook(t, "acme", "build", hookBody("acme", "build", b.recv.URL()+"/build", `,"secret":"browser-secret-1"`))
	shots := t.TempDir()
	if os.Getenv(screenshotsEnv) == "1" {
		shots = "screenshots"
	}
	// shot saves what the window shows; full, the whole page.
	shot := func(tab context.Context, name string, full bool) {
		t.Helper()
		capture := chromedp.CaptureScreenshot()
		if full {
			capture = chromedp.FullScreenshot(100)
		}
		png := get(t, tab, "screenshot "+name, capture)
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tab := browser(t)

	// Sign in with the keyboard: type the token, press Enter.
	run(t, tab, "sign in",
		chromedp.Navigate(b.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
	)
	shot(tab, "signin", false)
	run(t, tab, "sign in",
		chromedp.SendKeys(chromedp.CSS(`#token`), b.Tokens["acme"]+"\r"),
		chromedp.WaitVisible(chromedp.CSS(`#hooks-h`)),
	)
	if h1 := text(t, tab, "h1"); h1 != "Webhooks of acme" {
		t.Fatalf("after sign-in the page is %q", h1)
	}
	if got := text(t, tab, "table.hooks"); !strings.Contains(got, "Hook build") {
		t.Fatalf("the hooks table lacks the hook: %q", got)
	}

	// Create a hook through the form: a bad URL first, refused with the field named.
	run(t, tab, "open the form",
		chromedp.Click(chromedp.CSS(`a.button[href$="/new-hook"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#displayName`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "browser"),
		chromedp.SendKeys(chromedp.CSS(`#displayName`), "From the browser"),
		chromedp.SendKeys(chromedp.CSS(`#payloadUrl`), "ftp://127.0.0.1/x"),
		chromedp.SendKeys(chromedp.CSS(`#secret`), "browser-secret-2"),
		chromedp.Click(chromedp.CSS(`#filter-stack_created`)),
		chromedp.Click(chromedp.CSS(`form.hook-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.error-summary`)),
	)
	if got := text(t, tab, ".error-summary"); !strings.Contains(got, "payloadUrl") {
		t.Fatalf("the error summary does not name payloadUrl: %q", got)
	}
	if invalid := get(t, tab, "read aria-invalid", chromedp.AttributeValue(chromedp.CSS(`#payloadUrl`), "aria-invalid")).Value; invalid != "true" {
		t.Errorf("#payloadUrl aria-invalid = %q", invalid)
	}
	shot(tab, "form-errors", false)
	run(t, tab, "fix the form",
		chromedp.SetValue(chromedp.CSS(`#payloadUrl`), b.recv.URL()+"/browser"),
		chromedp.SendKeys(chromedp.CSS(`#secret`), "browser-secret-2"),
		chromedp.Click(chromedp.CSS(`form.hook-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
	)
	if got := text(t, tab, ".notice"); !strings.Contains(got, "Webhook created") {
		t.Fatalf("after create: %q", got)
	}
	hookURL := b.URL + "/-/orgs/acme/hooks/browser"

	// Fire an event; both hooks get it.
	b.emit(t, "acme", `{"filter":"stack_created","projectName":"web","stackName":"prod"}`)
	reqs := b.recv.Wait(t, 2)
	var first []byte
	for _, r := range reqs {
		if r.Path == "/hook/browser" {
			first = r.Body
		}
	}
	if first == nil {
		t.Fatalf("the new hook got nothing: %+v", reqs)
	}
	b.waitAttempts(t, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "browser"}, 1)
	b.waitAttempts(t, store.HookRef{Scope: webhook.Scope{Org: "acme"}, Name: "build"}, 1)

	// Open its delivery and press Redeliver.
	run(t, tab, "open the hook", chromedp.Navigate(hookURL), chromedp.WaitVisible(chromedp.CSS(`ol.attempts summary`)))
	run(t, tab, "expand the delivery",
		chromedp.Click(chromedp.CSS(`ol.attempts li:first-child summary`)),
		chromedp.WaitVisible(chromedp.CSS(`ol.attempts li:first-child .attempt pre`)),
	)
	detail := text(t, tab, "ol.attempts li:first-child .attempt")
	for _, want := range []string{"Pulumi-Webhook-Signature", `"stackName": "prod"`, "Code: 200"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the expanded delivery lacks %q:\n%s", want, detail)
		}
	}
	shot(tab, "hook", true)
	run(t, tab, "redeliver",
		chromedp.Click(chromedp.CSS(`ol.attempts li:first-child form button`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
	)
	again := b.recv.Wait(t, 3)[2]
	if again.Path != "/hook/browser" || string(again.Body) != string(first) {
		t.Fatalf("redelivery sent %s %q, want the same body again to /hook/browser", again.Path, again.Body)
	}
	if got := text(t, tab, "ol.attempts"); !strings.Contains(got, "attempt 2") || !strings.Contains(got, "attempt 1") {
		t.Fatalf("the delivery log does not list both attempts:\n%s", got)
	}

	// The overview on a phone: the chart and the events.
	run(t, tab, "overview", chromedp.Navigate(b.URL+"/acme"), chromedp.WaitVisible(chromedp.CSS(`#events`)))
	if got := text(t, tab, "#events"); !strings.Contains(got, "stack_created") {
		t.Errorf("recent events lack the event: %q", got)
	}
	shot(tab, "overview", false)
	phone := device.IPhone13.Device()
	phone.Scale = 1 // small screenshots
	run(t, tab, "phone", chromedp.Emulate(phone), chromedp.Navigate(b.URL+"/acme"), chromedp.WaitVisible(chromedp.CSS(`#events`)))
	shot(tab, "overview-phone", false)
	run(t, tab, "desktop", chromedp.EmulateReset())

	// A deployment of web/prod: from the stack's page through the navigation to its page
	// and its log.
	dep := b.deploy(t, prodStack, webhook.OperationUpdate)
	b.runDeployment(t, dep, "Updating (prod)\n\n     Type                 Name      Status\n +   pulumi:pulumi:Stack  web-prod  created\n +   aws:s3:Bucket        site      created\n\nOutputs:\n    bucket: \"site-4c1f\"\n    token : [secret]\n\nResources:\n    + 2 created\n\nDuration: 3s\n",
		&store.DeploymentCompleteParams{Status: store.DeploymentSucceeded})
	run(t, tab, "open the stack's deployments",
		chromedp.EmulateViewport(1024, 768),
		chromedp.Navigate(b.URL+"/acme/web/prod"),
		chromedp.WaitVisible(chromedp.CSS(`#deployments-h`)),
		chromedp.Click(chromedp.CSS(`nav a[href="/-/stacks/acme/web/prod/deployments"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.deployments`)),
		chromedp.Click(chromedp.CSS(`table.deployments a[href="/acme/web/prod/deployments/1"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#log`)),
	)
	if got := text(t, tab, "#log"); !strings.Contains(got, "aws:s3:Bucket        site      created") || !strings.Contains(got, "+ 2 created") {
		t.Fatalf("the deployment's log: %q", got)
	}
	shot(tab, "deployment", false)
	deploymentURL := b.URL + "/acme/web/prod/deployments/1"

	// Another organization signs in and sees none of it.
	run(t, tab, "sign out and in as globex",
		chromedp.Click(chromedp.CSS(`form.signout button`)),
		chromedp.WaitVisible(chromedp.CSS(`#token`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), b.Tokens["globex"]+"\r"),
		chromedp.WaitVisible(chromedp.CSS(`#hooks-h`)),
	)
	body := text(t, tab, "main")
	if strings.Contains(body, "Hook build") || strings.Contains(body, "From the browser") || strings.Contains(body, "stack_created") {
		t.Fatalf("globex sees acme's hooks or events:\n%s", body)
	}
	run(t, tab, "globex opens acme's hook", chromedp.Navigate(hookURL), chromedp.WaitVisible(chromedp.CSS(`main .error`)))
	body = text(t, tab, "main")
	if !strings.Contains(body, "not found") || strings.Contains(body, "From the browser") {
		t.Fatalf("globex on acme's hook page:\n%s", body)
	}
	run(t, tab, "globex opens acme's deployment", chromedp.Navigate(deploymentURL), chromedp.WaitVisible(chromedp.CSS(`main .error`)))
	if body = text(t, tab, "main"); !strings.Contains(body, "not found") || strings.Contains(body, "aws:s3:Bucket") {
		t.Fatalf("globex on acme's deployment page:\n%s", body)
	}
	html := get(t, tab, "page source", chromedp.OuterHTML(chromedp.CSS("html")))
	for _, secret := range []string{"browser-secret-1", "browser-secret-2", b.Tokens["acme"], b.Tokens["globex"]} {
		if strings.Contains(html, secret) {
			t.Errorf("a page shows a secret or token")
		}
	}
	t.Log(fmt.Sprintf("screenshots in %s", shots))
}
