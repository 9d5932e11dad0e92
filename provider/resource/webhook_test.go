package resource

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
	"github.com/pulumi/pulumi-go-provider/integration"
	presource "github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/property"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func stackHook() map[string]property.Value {
	in := orgHook()
	in["displayName"] = str("Stack hook")
	in["projectName"] = str("web")
	in["stackName"] = str("prod")
	return in
}

func environmentHook() map[string]property.Value {
	in := orgHook()
	in["displayName"] = str("Environment hook")
	in["projectName"] = str("shared")
	in["environmentName"] = str("aws")
	return in
}

func TestCreate(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		cases := []struct {
			name   string
			inputs map[string]property.Value
			id     *regexp.Regexp
			scope  webhook.Scope
			groups []string
		}{
			{"organization", orgHook(), regexp.MustCompile(`^acme/[^/]+$`),
				webhook.Scope{Org: "acme"}, []string{"deployments", "environments", "stacks"}},
			{"stack", stackHook(), regexp.MustCompile(`^acme/web/prod/[^/]+$`),
				webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, []string{"deployments", "stacks"}},
			{"environment", environmentHook(), regexp.MustCompile(`^acme/environment/shared/aws/[^/]+$`),
				webhook.Scope{Org: "acme", Project: "shared", Environment: "aws"}, []string{"environments"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				tb := setup(t, m)
				id, _, state := tb.create(t, c.inputs)
				require.Regexp(t, c.id, id)

				name := state.Get("name").AsString()
				require.True(t, strings.HasSuffix(id, "/"+name), "the ID ends with the name")
				assert.Equal(t, "raw", state.Get("format").AsString())
				assert.Equal(t, strs(c.groups...), state.Get("groups"))
				assert.True(t, state.Get("active").AsBool())
				assert.Equal(t, c.inputs["displayName"], state.Get("displayName"))

				h, err := tb.outside().HookGet(context.Background(), store.HookRef{Scope: c.scope, Name: name})
				require.NoError(t, err)
				assert.Equal(t, c.inputs["displayName"].AsString(), h.DisplayName)
				assert.Equal(t, "https://hooks.example.com/org", h.PayloadURL)
				assert.Equal(t, webhook.FormatRaw, h.Format)
				assert.False(t, h.HasSecret)
				assert.Equal(t, toGroupsOf(c.groups), h.Groups)
			})
		}
	})
}

func toGroupsOf(ss []string) []webhook.Group {
	out := make([]webhook.Group, len(ss))
	for i, s := range ss {
		out[i] = webhook.Group(s)
	}
	return out
}

func TestCreateWithSecretAndFilters(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := stackHook()
		in["secret"] = str("s3cret-value").WithSecret(true)
		in["filters"] = strs("update_succeeded", "deployment_failed")
		in["format"] = str("slack")
		id, _, state := tb.create(t, in)

		secret := state.Get("secret")
		require.True(t, secret.Secret(), "the secret output is marked secret")
		assert.Equal(t, "s3cret-value", secret.AsString())
		assert.Equal(t, strs("update_succeeded", "deployment_failed"), state.Get("filters"))
		assert.False(t, has(state, "groups"), "filters given: no default groups")
		assert.Equal(t, "slack", state.Get("format").AsString())

		ref, err := ParseID(id)
		require.NoError(t, err)
		h, err := tb.outside().HookGet(context.Background(), ref)
		require.NoError(t, err)
		assert.True(t, h.HasSecret)
		tb.secretIs(t, id, "s3cret-value")
		assert.Equal(t, []webhook.Filter{webhook.UpdateSucceeded, webhook.DeploymentFailed}, h.Filters)
		assert.Equal(t, webhook.FormatSlack, h.Format)
	})
}

func TestCreatePreviewTouchesNothing(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		checked := tb.check(t, stackHook())
		resp, err := tb.server.Create(p.CreateRequest{Urn: webhookURN, Properties: checked, DryRun: true})
		require.NoError(t, err)
		assert.Empty(t, resp.ID)
		assert.True(t, resp.Properties.Get("name").IsComputed(), "the name is unknown until the store picks it")
		assert.Equal(t, "Stack hook", resp.Properties.Get("displayName").AsString())
		tb.assertUntouched(t, "a preview")
	})
}

func TestCreateRejectedByService(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		// Skip Check, as a misbehaving engine might: the service's own validation still applies.
		in := orgHook()
		in["displayName"] = str("   ")
		_, err := tb.server.Create(p.CreateRequest{Urn: webhookURN, Properties: property.NewMap(in)})
		assertCleanError(t, err)
		assert.Contains(t, err.Error(), "cannot create webhook in acme")
		assert.Contains(t, err.Error(), "rejected")
		assert.Contains(t, err.Error(), "displayName: is required: give the webhook a human-readable name")
		if tb.remote() {
			// The message is the server's 400 answer, field by field: the server validated it.
			waitfor.Condition(t, "the server's 400 answer", func() bool { return tb.apiRequests(t, http.StatusBadRequest) == 1 })
		}
		hooks, err := tb.outside().HookList(context.Background(), store.HookListParams{})
		require.NoError(t, err)
		assert.Empty(t, hooks)
	})
}

func TestCheckFailures(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		type change = func(in map[string]property.Value)
		cases := []struct {
			name     string
			change   change
			property string
			reason   string
		}{
			{"missing organization", func(in map[string]property.Value) { delete(in, "organizationName") },
				"organizationName", "organizationName is required: name the organization"},
			{"missing display name", func(in map[string]property.Value) { delete(in, "displayName") },
				"displayName", "displayName is required"},
			{"missing payload URL", func(in map[string]property.Value) { delete(in, "payloadUrl") },
				"payloadUrl", "payloadUrl is required"},
			{"missing active", func(in map[string]property.Value) { delete(in, "active") },
				"active", "active is required: set it to true"},
			{"active of the wrong type", func(in map[string]property.Value) { in["active"] = str("yes") },
				"active", "active must be a boolean"},
			{"blank display name", func(in map[string]property.Value) { in["displayName"] = str("  ") },
				"displayName", "displayName is required: give the webhook a human-readable name"},
			{"project alone", func(in map[string]property.Value) { in["projectName"] = str("web") },
				"projectName", "neither stackName nor environmentName"},
			{"stack without project", func(in map[string]property.Value) { in["stackName"] = str("prod") },
				"projectName", "is required for a stack webhook"},
			{"environment without project", func(in map[string]property.Value) { in["environmentName"] = str("aws") },
				"projectName", "is required for an environment webhook"},
			{"stack and environment", func(in map[string]property.Value) {
				in["projectName"], in["stackName"], in["environmentName"] = str("web"), str("prod"), str("aws")
			}, "environmentName", "cannot be set together with stackName"},
			{"slash in organization", func(in map[string]property.Value) { in["organizationName"] = str("acme/dev") },
				"organizationName", "contains a slash or white space"},
			{"unknown filter", func(in map[string]property.Value) { in["filters"] = strs("update_done") },
				"filters", `unknown filter "update_done"; valid filters are`},
			{"unknown group", func(in map[string]property.Value) { in["groups"] = strs("policies") },
				"groups", `unknown group "policies"`},
			{"unknown format", func(in map[string]property.Value) { in["format"] = str("discord") },
				"format", `unknown format "discord"`},
			{"pulumi_deployments on an organization hook", func(in map[string]property.Value) {
				in["format"], in["payloadUrl"] = str("pulumi_deployments"), str("web/prod")
			}, "format", "must belong to a stack or an environment"},
			{"pulumi_deployments with a URL", func(in map[string]property.Value) {
				in["projectName"], in["stackName"] = str("web"), str("prod")
				in["format"] = str("pulumi_deployments")
			}, "payloadUrl", "is not a deployment target"},
			{"relative payload URL", func(in map[string]property.Value) { in["payloadUrl"] = str("/hooks") },
				"payloadUrl", "is not an absolute http:// or https:// URL"},
			{"non-HTTP payload URL", func(in map[string]property.Value) { in["payloadUrl"] = str("ftp://example.com/x") },
				"payloadUrl", "is not an absolute http:// or https:// URL"},
			{"payload URL with credentials", func(in map[string]property.Value) {
				in["payloadUrl"] = str("https://user:pw@example.com/x")
			}, "payloadUrl", "payloadUrl: the URL carries user credentials"},
			{"format of a slack hook without a URL", func(in map[string]property.Value) {
				in["format"], in["payloadUrl"] = str("slack"), str("")
			}, "payloadUrl", "payloadUrl is required"},
		}
		// The group waits for its parallel cases, so the store is checked after all of them.
		t.Run("cases", func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					in := orgHook()
					c.change(in)
					resp, err := tb.server.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(in)})
					require.NoError(t, err)
					require.Len(t, resp.Failures, 1, "failures: %v", resp.Failures)
					assert.Equal(t, c.property, resp.Failures[0].Property)
					assert.Contains(t, resp.Failures[0].Reason, c.reason)
				})
			}
		})
		tb.assertUntouched(t, "Check")
	})
}

func TestCheckReportsEveryFailure(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := orgHook()
		delete(in, "displayName")
		in["payloadUrl"] = str("not a url")
		in["groups"] = strs("stacks", "policies")
		resp, err := tb.server.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(in)})
		require.NoError(t, err)
		var props []string
		for _, f := range resp.Failures {
			props = append(props, f.Property)
		}
		assert.ElementsMatch(t, []string{"displayName", "payloadUrl", "groups"}, props)
	})
}

// TestCheckWarnings: what Pulumi Cloud and the official provider accept but is probably a
// mistake passes Check with a warning that names the field, why and the fix; the webhook is
// created as written, and its lists read back without drift. Not parallel: the warnings go to
// the default logger, which it captures.
func TestCheckWarnings(t *testing.T) {
	var logs bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() { slog.SetDefault(prev) })
	cases := []warningCase{
		{"organization-only filter on a stack hook", func(in map[string]property.Value) {
			in["projectName"], in["stackName"] = str("web"), str("prod")
			in["filters"] = strs("update_succeeded", "stack_created")
		}, []string{`filters[1] \"stack_created\" fires for organization webhooks only, so this webhook never receives it: remove it`}},
		{"environment filter on a stack hook", func(in map[string]property.Value) {
			in["projectName"], in["stackName"] = str("web"), str("prod")
			in["filters"] = strs("environment_revision_created")
		}, []string{"is an environment event and never reaches a stack webhook"}},
		{"environment creation on an environment hook", func(in map[string]property.Value) {
			in["projectName"], in["environmentName"] = str("shared"), str("aws")
			in["filters"] = strs("environment_created")
		}, []string{"fires for organization webhooks only"}},
		{"stack filter on an environment hook", func(in map[string]property.Value) {
			in["projectName"], in["environmentName"] = str("shared"), str("aws")
			in["filters"] = strs("update_failed")
		}, []string{"is a stack event and never reaches an environment webhook"}},
		{"duplicate filter", func(in map[string]property.Value) {
			in["filters"] = strs("update_failed", "update_succeeded", "update_failed")
		},
			[]string{`filters[2] \"update_failed\" is listed twice: remove the duplicate`}},
		{"duplicate group", func(in map[string]property.Value) { in["groups"] = strs("stacks", "stacks") },
			[]string{`groups[1] \"stacks\" is listed twice`}},
		{"many repeats: the first ones, then a count", func(in map[string]property.Value) {
			in["filters"] = strs(slices.Repeat([]string{"update_failed"}, webhook.FieldErrorsMax+5)...)
		}, []string{`filters[20] \"update_failed\" is listed twice`, "and 4 more such entries"}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { checkWarnings(t, setup(t, m), &logs, cases) })
	}
}

// warningCase is a change to orgHook that Check accepts with warnings containing want.
type warningCase struct {
	name   string
	change func(map[string]property.Value)
	want   []string
}

func checkWarnings(t *testing.T, tb *testBundle, logs *bytes.Buffer, cases []warningCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs.Reset()
			in := orgHook()
			c.change(in)
			resp, err := tb.server.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(in)})
			require.NoError(t, err)
			require.Empty(t, resp.Failures, "Pulumi Cloud accepts it, so Check does")
			for _, w := range c.want {
				assert.Contains(t, logs.String(), w)
			}
			assert.Contains(t, logs.String(), "level=WARN")
			assert.Contains(t, logs.String(), string(webhookURN), "the warning is about the resource")

			got := tb.created(t, in)
			assert.Equal(t, resp.Inputs.Get("filters"), got.state.Get("filters"), "filters as written")
			assert.Equal(t, resp.Inputs.Get("groups"), got.state.Get("groups"), "groups as written")
			assert.False(t, tb.diff(t, got, in).HasChanges, "the lists read back as written")
		})
	}
	logs.Reset()
	resp, err := tb.server.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(orgHook())})
	require.NoError(t, err)
	require.Empty(t, resp.Failures)
	assert.Empty(t, logs.String(), "a clean webhook gets no warning")
}

func TestCheckDefaults(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		cases := []struct {
			name   string
			inputs map[string]property.Value
			groups property.Value // nil: no groups expected
		}{
			{"organization", orgHook(), strs("deployments", "environments", "stacks")},
			{"stack", stackHook(), strs("deployments", "stacks")},
			{"environment", environmentHook(), strs("environments")},
			{"empty lists", func() map[string]property.Value {
				in := orgHook()
				in["filters"], in["groups"] = strs(), strs()
				return in
			}(), strs("deployments", "environments", "stacks")},
			{"filters only", func() map[string]property.Value {
				in := orgHook()
				in["filters"] = strs("update_failed")
				return in
			}(), property.Value{}},
			{"groups kept", func() map[string]property.Value {
				in := stackHook()
				in["groups"] = strs("stacks")
				return in
			}(), strs("stacks")},
			{"stack still unknown", func() map[string]property.Value {
				in := stackHook()
				in["stackName"] = property.New(property.Computed)
				return in
			}(), strs("deployments", "stacks")},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				checked := tb.check(t, c.inputs)
				assert.Equal(t, "raw", checked.Get("format").AsString(), "format defaults to raw")
				assert.Equal(t, c.groups, checked.Get("groups"))
			})
		}
	})
}

func TestCheckWaitsForUnknowns(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		unknown := property.New(property.Computed)
		cases := map[string]func(in map[string]property.Value){
			"payload URL":  func(in map[string]property.Value) { in["payloadUrl"] = unknown },
			"display name": func(in map[string]property.Value) { in["displayName"] = unknown },
			"organization": func(in map[string]property.Value) { in["organizationName"] = unknown },
			"stack decides the filters": func(in map[string]property.Value) {
				in["projectName"], in["stackName"] = str("web"), unknown
				in["filters"] = strs("update_succeeded")
			},
			"format decides the URL": func(in map[string]property.Value) {
				in["format"], in["payloadUrl"] = unknown, str("web/prod")
			},
			"a filter": func(in map[string]property.Value) {
				in["filters"] = property.New([]property.Value{str("update_failed"), unknown})
			},
		}
		for name, change := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				in := orgHook()
				change(in)
				checked := tb.check(t, in)
				for k, v := range in {
					if v.HasComputed() {
						assert.True(t, checked.Get(k).HasComputed(), "%s stays unknown", k)
					}
				}
			})
		}
	})
}

// created is what a Diff, Update or Read of a created webhook needs.
type created struct {
	id     string
	inputs property.Map
	state  property.Map
}

func (tb *testBundle) created(t *testing.T, inputs map[string]property.Value) created {
	t.Helper()
	id, checked, state := tb.create(t, inputs)
	return created{id: id, inputs: checked, state: state}
}

func (tb *testBundle) diff(t *testing.T, c created, inputs map[string]property.Value) p.DiffResponse {
	t.Helper()
	checked, err := tb.server.Check(p.CheckRequest{Urn: webhookURN, State: c.inputs, Inputs: property.NewMap(inputs)})
	require.NoError(t, err)
	require.Empty(t, checked.Failures)
	resp, err := tb.server.Diff(p.DiffRequest{ID: c.id, Urn: webhookURN, State: c.state, OldInputs: c.inputs, Inputs: checked.Inputs})
	require.NoError(t, err)
	return resp
}

func TestDiff(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		base := func() map[string]property.Value {
			in := stackHook()
			in["secret"] = str("one").WithSecret(true)
			in["filters"] = strs("update_succeeded", "update_failed")
			return in
		}
		c := tb.created(t, base())
		type change = func(in map[string]property.Value)
		cases := []struct {
			name string
			edit change
			want map[string]p.DiffKind
		}{
			{"nothing", func(map[string]property.Value) {}, map[string]p.DiffKind{}},
			{"filters reordered", func(in map[string]property.Value) { in["filters"] = strs("update_failed", "update_succeeded") },
				map[string]p.DiffKind{}},
			{"display name", func(in map[string]property.Value) { in["displayName"] = str("Renamed") },
				map[string]p.DiffKind{"displayName": p.Update}},
			{"payload URL and active", func(in map[string]property.Value) {
				in["payloadUrl"], in["active"] = str("https://other.example.com/x"), property.New(false)
			}, map[string]p.DiffKind{"payloadUrl": p.Update, "active": p.Update}},
			{"format", func(in map[string]property.Value) { in["format"] = str("ms_teams") },
				map[string]p.DiffKind{"format": p.Update}},
			{"filters changed", func(in map[string]property.Value) { in["filters"] = strs("update_succeeded") },
				map[string]p.DiffKind{"filters": p.Update}},
			{"filters replaced by groups", func(in map[string]property.Value) {
				delete(in, "filters")
				in["groups"] = strs("stacks")
			}, map[string]p.DiffKind{"filters": p.Delete, "groups": p.Add}},
			{"secret changed", func(in map[string]property.Value) { in["secret"] = str("two").WithSecret(true) },
				map[string]p.DiffKind{"secret": p.Update}},
			{"secret removed", func(in map[string]property.Value) { delete(in, "secret") },
				map[string]p.DiffKind{"secret": p.Delete}},
			{"stack changed", func(in map[string]property.Value) { in["stackName"] = str("staging") },
				map[string]p.DiffKind{"stackName": p.UpdateReplace}},
			{"organization changed", func(in map[string]property.Value) { in["organizationName"] = str("other") },
				map[string]p.DiffKind{"organizationName": p.UpdateReplace}},
			{"moved to the organization", func(in map[string]property.Value) {
				delete(in, "projectName")
				delete(in, "stackName")
			}, map[string]p.DiffKind{"projectName": p.DeleteReplace, "stackName": p.DeleteReplace}},
			{"moved to an environment", func(in map[string]property.Value) {
				delete(in, "stackName")
				in["environmentName"] = str("aws")
				in["filters"] = strs("environment_revision_created")
			}, map[string]p.DiffKind{"stackName": p.DeleteReplace, "environmentName": p.AddReplace, "filters": p.Update}},
			{"display name unknown", func(in map[string]property.Value) { in["displayName"] = property.New(property.Computed) },
				map[string]p.DiffKind{"displayName": p.Update}},
			{"stack unknown", func(in map[string]property.Value) { in["stackName"] = property.New(property.Computed) },
				map[string]p.DiffKind{"stackName": p.UpdateReplace}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				in := base()
				tc.edit(in)
				resp := tb.diff(t, c, in)
				got := map[string]p.DiffKind{}
				for k, v := range resp.DetailedDiff {
					got[k] = v.Kind
					assert.True(t, v.InputDiff, "%s compares inputs", k)
				}
				assert.Equal(t, tc.want, got)
				assert.Equal(t, len(tc.want) > 0, resp.HasChanges)
			})
		}
	})
}

func TestDiffAddsSecret(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		c := tb.created(t, orgHook())
		in := orgHook()
		in["secret"] = str("new").WithSecret(true)
		resp := tb.diff(t, c, in)
		assert.Equal(t, map[string]p.PropertyDiff{"secret": {Kind: p.Add, InputDiff: true}}, resp.DetailedDiff)
	})
}

func (tb *testBundle) update(t *testing.T, c created, inputs map[string]property.Value, dryRun bool) (p.UpdateResponse, error) {
	t.Helper()
	checked := tb.check(t, inputs)
	return tb.server.Update(p.UpdateRequest{ID: c.id, Urn: webhookURN, State: c.state, OldInputs: c.inputs, Inputs: checked, DryRun: dryRun})
}

func (tb *testBundle) hook(t *testing.T, id string) *store.Hook {
	t.Helper()
	ref, err := ParseID(id)
	require.NoError(t, err)
	h, err := tb.outside().HookGet(context.Background(), ref)
	require.NoError(t, err)
	return h
}

// secretIs asserts that the hook id holds secret: the store's digest is keyed with its key, so
// the test asks the store, as the provider does.
func (tb *testBundle) secretIs(t *testing.T, id, secret string) {
	t.Helper()
	ref, err := ParseID(id)
	require.NoError(t, err)
	ok, err := tb.outside().HookSecretMatches(context.Background(), ref, secret)
	require.NoError(t, err)
	assert.True(t, ok, "the hook's secret is not the expected one")
	h := tb.hook(t, id)
	assert.Len(t, h.SecretDigest, 64)
	assert.NotEqual(t, plainSHA256(secret), h.SecretDigest, "the digest must be keyed, not a plain hash")
}

func plainSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := stackHook()
		in["secret"] = str("keep-me").WithSecret(true)
		c := tb.created(t, in)
		before := tb.hook(t, c.id)

		in["displayName"] = str("Renamed")
		in["payloadUrl"] = str("https://other.example.com/hook")
		in["active"] = property.New(false)
		in["filters"] = strs("update_failed", "deployment_failed")
		in["format"] = str("ms_teams")

		preview, err := tb.update(t, c, in, true)
		require.NoError(t, err)
		assert.Equal(t, "Renamed", preview.Properties.Get("displayName").AsString())
		assert.Equal(t, c.state.Get("name"), preview.Properties.Get("name"), "an in-place update keeps the name known")
		assert.Equal(t, before, tb.hook(t, c.id), "a preview leaves the store alone")

		resp, err := tb.update(t, c, in, false)
		require.NoError(t, err)
		after := tb.hook(t, c.id)
		assert.Equal(t, "Renamed", after.DisplayName)
		assert.Equal(t, "https://other.example.com/hook", after.PayloadURL)
		assert.False(t, after.Active)
		assert.Equal(t, webhook.FormatMicrosoftTeams, after.Format)
		assert.Equal(t, []webhook.Filter{webhook.UpdateFailed, webhook.DeploymentFailed}, after.Filters)
		assert.Equal(t, before.SecretDigest, after.SecretDigest, "an unchanged secret is kept")
		assert.Equal(t, before.Name, after.Name)

		assert.Equal(t, "Renamed", resp.Properties.Get("displayName").AsString())
		assert.False(t, resp.Properties.Get("active").AsBool())
		assert.Equal(t, "keep-me", resp.Properties.Get("secret").AsString())
		assert.True(t, resp.Properties.Get("secret").Secret())
	})
}

func TestUpdateSecret(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := orgHook()
		in["secret"] = str("first").WithSecret(true)
		c := tb.created(t, in)

		in["secret"] = str("second").WithSecret(true)
		resp, err := tb.update(t, c, in, false)
		require.NoError(t, err)
		tb.secretIs(t, c.id, "second")
		assert.True(t, resp.Properties.Get("secret").Secret())

		c.state, c.inputs = resp.Properties, tb.check(t, in)
		delete(in, "secret")
		_, err = tb.update(t, c, in, false)
		require.NoError(t, err)
		h := tb.hook(t, c.id)
		assert.False(t, h.HasSecret, "removing the secret from the program removes it from the store")
		assert.Empty(t, h.SecretDigest)
	})
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := orgHook()
		c := tb.created(t, in)

		bad := c
		bad.id = "acme"
		_, err := tb.update(t, bad, in, false)
		require.ErrorContains(t, err, `malformed webhook ID "acme"`)

		moved := stackHook()
		_, err = tb.update(t, c, moved, false)
		require.ErrorContains(t, err, "needs a replacement")

		ref, err := ParseID(c.id)
		require.NoError(t, err)
		require.NoError(t, tb.outside().HookDelete(context.Background(), ref))
		in["displayName"] = str("Renamed")
		_, err = tb.update(t, c, in, false)
		require.ErrorContains(t, err, "cannot update webhook "+c.id+": no such webhook exists")
		require.ErrorContains(t, err, "pulumi refresh")
		assertCleanError(t, err)
		if tb.remote() {
			// The server's own 404 message is part of the diagnostic.
			require.ErrorContains(t, err, `webhook "`+ref.String()+`" not found`)
		}
	})
}

func TestDelete(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		c := tb.created(t, environmentHook())
		require.NoError(t, tb.server.Delete(p.DeleteRequest{ID: c.id, Urn: webhookURN, Properties: c.state}))
		ref, err := ParseID(c.id)
		require.NoError(t, err)
		_, err = tb.outside().HookGet(context.Background(), ref)
		require.ErrorIs(t, err, store.ErrNotFound)

		// Deleting again (e.g. after it was deleted outside Pulumi) succeeds.
		require.NoError(t, tb.server.Delete(p.DeleteRequest{ID: c.id, Urn: webhookURN, Properties: c.state}))

		err = tb.server.Delete(p.DeleteRequest{ID: "acme/x/y", Urn: webhookURN, Properties: c.state})
		require.ErrorContains(t, err, "malformed webhook ID")
	})
}

func (tb *testBundle) read(t *testing.T, c created) p.ReadResponse {
	t.Helper()
	resp, err := tb.server.Read(p.ReadRequest{ID: c.id, Urn: webhookURN, Properties: c.state, Inputs: c.inputs})
	require.NoError(t, err)
	return resp
}

// editOutside changes a hook directly through the engine, as the CLI or REST API would.
func (tb *testBundle) editOutside(t *testing.T, id string, edit func(s *webhook.Spec), secret *string) {
	t.Helper()
	h := tb.hook(t, id)
	spec := h.Spec
	edit(&spec)
	_, err := tb.outside().HookUpdate(context.Background(), engine.HookUpdateParams{Ref: h.Ref(), Spec: spec, Secret: secret})
	require.NoError(t, err)
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := stackHook()
		in["secret"] = str("s").WithSecret(true)
		c := tb.created(t, in)

		unchanged := tb.read(t, c)
		assert.Equal(t, c.id, unchanged.ID)
		assert.Equal(t, c.state, unchanged.Properties, "no drift, no change")
		assert.Equal(t, c.inputs, unchanged.Inputs)

		tb.editOutside(t, c.id, func(s *webhook.Spec) {
			s.DisplayName = "Edited outside"
			s.PayloadURL = "https://elsewhere.example.com/"
			s.Active = false
			s.Format = webhook.FormatSlack
			s.Filters = []webhook.Filter{webhook.PreviewFailed}
			s.Groups = nil
		}, nil)
		drift := tb.read(t, c)
		assert.Equal(t, c.id, drift.ID)
		for _, m := range []property.Map{drift.Properties, drift.Inputs} {
			assert.Equal(t, "Edited outside", m.Get("displayName").AsString())
			assert.Equal(t, "https://elsewhere.example.com/", m.Get("payloadUrl").AsString())
			assert.False(t, m.Get("active").AsBool())
			assert.Equal(t, "slack", m.Get("format").AsString())
			assert.Equal(t, strs("preview_failed"), m.Get("filters"))
			assert.False(t, has(m, "groups"))
			assert.Equal(t, str("s").WithSecret(true), m.Get("secret"), "the secret did not change")
		}

		// The next preview puts the program's values back, in place.
		resp := tb.diff(t, created{id: c.id, inputs: drift.Inputs, state: drift.Properties}, in)
		assert.Len(t, resp.DetailedDiff, 6)
		for k, d := range resp.DetailedDiff {
			assert.False(t, replaceOnChange(k), "%s: %s", k, d.Kind)
		}
	})
}

func TestRefreshDeletedOutside(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		c := tb.created(t, orgHook())
		ref, err := ParseID(c.id)
		require.NoError(t, err)
		require.NoError(t, tb.outside().HookDelete(context.Background(), ref))
		resp := tb.read(t, c)
		assert.Empty(t, resp.ID, "a webhook deleted outside Pulumi disappears from the state")
	})
}

func TestRefreshSecretDrift(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		withSecret := func() map[string]property.Value {
			in := orgHook()
			in["secret"] = str("program-secret").WithSecret(true)
			return in
		}
		rotated := "rotated-outside"
		empty := ""
		cases := []struct {
			name    string
			program map[string]property.Value
			secret  *string // what is set outside Pulumi
			drift   bool    // a secret other than the program's is recorded
		}{
			{"rotated", withSecret(), &rotated, true},
			{"added", orgHook(), &rotated, true},
			{"removed", withSecret(), &empty, false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tb := setup(t, m)
				c := tb.created(t, tc.program)
				tb.editOutside(t, c.id, func(*webhook.Spec) {}, tc.secret)

				resp := tb.read(t, c)
				for _, m := range []property.Map{resp.Properties, resp.Inputs} {
					got := m.Get("secret")
					if !tc.drift {
						assert.False(t, has(m, "secret"), "the removed secret is gone from the state")
						continue
					}
					require.True(t, got.IsString())
					assert.True(t, got.Secret(), "the refreshed secret stays secret")
					assert.NotEqual(t, "program-secret", got.AsString())
					assert.NotEqual(t, rotated, got.AsString(), "the store's secret is never read back")
				}

				// A second refresh is stable.
				again := tb.read(t, created{id: c.id, inputs: resp.Inputs, state: resp.Properties})
				assert.Equal(t, resp.Properties, again.Properties)

				// The next update writes the program's secret back.
				refreshed := created{id: c.id, inputs: resp.Inputs, state: resp.Properties}
				d := tb.diff(t, refreshed, tc.program)
				require.Contains(t, d.DetailedDiff, "secret")
				_, err := tb.update(t, refreshed, tc.program, false)
				require.NoError(t, err)
				h := tb.hook(t, c.id)
				if _, has := tc.program["secret"]; has {
					tb.secretIs(t, c.id, "program-secret")
				} else {
					assert.False(t, h.HasSecret)
				}
			})
		}
	})
}

func TestImport(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		cases := []struct {
			name string
			spec webhook.Spec
			id   string
		}{
			{"organization", webhook.Spec{Scope: webhook.Scope{Org: "acme"}, Name: "org-hook",
				Filters: []webhook.Filter{webhook.StackCreated, webhook.UpdateFailed}}, "acme/org-hook"},
			{"stack", webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: "stack-hook",
				Groups: []webhook.Group{webhook.GroupStacks}, Format: webhook.FormatSlack}, "acme/web/prod/stack-hook"},
			{"environment", webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "shared", Environment: "aws"}, Name: "env-hook",
				Groups: []webhook.Group{webhook.GroupEnvironments}}, "acme/environment/shared/aws/env-hook"},
			{"environment of the default project", webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "default", Environment: "aws"}, Name: "env-hook",
				Groups: []webhook.Group{webhook.GroupEnvironments}}, "acme/environment/default/aws/env-hook"},
			{"stack of a project called environment", webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "environment", Stack: "aws"}, Name: "stack-hook",
				Groups: []webhook.Group{webhook.GroupStacks}}, "acme/environment/aws/stack-hook"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tb := setup(t, m)
				spec := tc.spec
				spec.DisplayName = "Made outside"
				spec.PayloadURL = "https://hooks.example.com/imported"
				spec.Active = true
				spec.Secret = "unreadable"
				h, err := tb.outside().HookCreate(context.Background(), spec)
				require.NoError(t, err)

				resp, err := tb.server.Read(p.ReadRequest{ID: tc.id, Urn: webhookURN})
				require.NoError(t, err)
				assert.Equal(t, tc.id, resp.ID)
				in := resp.Inputs
				assert.Equal(t, "Made outside", in.Get("displayName").AsString())
				assert.Equal(t, "https://hooks.example.com/imported", in.Get("payloadUrl").AsString())
				assert.True(t, in.Get("active").AsBool())
				assert.Equal(t, "acme", in.Get("organizationName").AsString())
				assert.Equal(t, string(h.Format), in.Get("format").AsString())
				assert.Equal(t, tc.spec.Project, optionalString(in, "projectName"))
				assert.Equal(t, tc.spec.Stack, optionalString(in, "stackName"))
				assert.Equal(t, tc.spec.Environment, optionalString(in, "environmentName"))
				assert.Equal(t, len(tc.spec.Filters), arrayLen(in, "filters"))
				assert.Equal(t, len(tc.spec.Groups), arrayLen(in, "groups"))
				assert.False(t, has(in, "secret"), "the secret cannot be read back")
				assert.Equal(t, tc.spec.Name, resp.Properties.Get("name").AsString())

				// A program written from the imported inputs previews no change.
				d := tb.diff(t, created{id: resp.ID, inputs: resp.Inputs, state: resp.Properties}, resp.Inputs.AsMap())
				assert.False(t, d.HasChanges, "diff after import: %v", d.DetailedDiff)

				// A refresh right after the import reports the secret it could not read.
				refreshed := tb.read(t, created{id: resp.ID, inputs: resp.Inputs, state: resp.Properties})
				assert.True(t, refreshed.Properties.Get("secret").Secret())
			})
		}
	})
}

func optionalString(m property.Map, key string) string {
	v, ok := m.GetOk(key)
	if !ok {
		return ""
	}
	return v.AsString()
}

func arrayLen(m property.Map, key string) int {
	v, ok := m.GetOk(key)
	if !ok {
		return 0
	}
	return v.AsArray().Len()
}

func TestImportErrors(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		for _, id := range []string{
			"acme",
			"acme/web/hook",
			"acme/envs/shared/aws/hook",
			"acme/Environment/shared/aws/hook",
			"/hook",
			"acme/environment//aws/hook",
			"acme/environment/shared/aws/hook/extra",
			"acme//hook",
			"acme/ hook",
			"",
		} {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				_, err := tb.server.Read(p.ReadRequest{ID: id, Urn: webhookURN})
				require.Error(t, err)
				assert.Contains(t, err.Error(), "cannot import: malformed webhook ID")
				assert.Contains(t, err.Error(), "{org}/{project}/{stack}/{name}")
			})
		}
		t.Run("environment without its project", func(t *testing.T) {
			t.Parallel()
			_, err := tb.server.Read(p.ReadRequest{ID: "acme/environment/aws/nope", Urn: webhookURN})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "no such webhook exists")
			assert.Contains(t, err.Error(), `in the project "default": acme/environment/default/aws/nope`)
			assertCleanError(t, err)
		})
		t.Run("missing", func(t *testing.T) {
			t.Parallel()
			_, err := tb.server.Read(p.ReadRequest{ID: "acme/web/prod/nope", Urn: webhookURN})
			require.Error(t, err)
			assert.Contains(t, err.Error(), "cannot import webhook acme/web/prod/nope: no such webhook exists")
			assertCleanError(t, err)
			if tb.remote() {
				assert.Contains(t, err.Error(), `webhook "acme/web/prod/nope" not found`, "the server's message")
			}
		})
	})
}

func TestLifeCycle(t *testing.T) {
	t.Parallel()
	eachMode(t, func(t *testing.T, m mode) {
		tb := setup(t, m)
		in := stackHook()
		in["secret"] = str("abc").WithSecret(true)
		updated := stackHook()
		updated["secret"] = str("abc").WithSecret(true)
		updated["displayName"] = str("Renamed")
		updated["groups"] = strs("stacks")
		integration.LifeCycleTest{
			Resource: "pulumiservice:index:Webhook",
			Create: integration.Operation{
				Inputs: property.NewMap(in),
				Hook: func(_, output property.Map) {
					assert.Equal(t, "Stack hook", output.Get("displayName").AsString())
				},
			},
			Updates: []integration.Operation{{
				Inputs: property.NewMap(updated),
				Hook: func(_, output property.Map) {
					assert.Equal(t, "Renamed", output.Get("displayName").AsString())
					assert.Equal(t, strs("stacks"), output.Get("groups"))
				},
			}, {
				Inputs: property.NewMap(orgHook()), // a change of scope: replaced
				Hook: func(_, output property.Map) {
					assert.False(t, has(output, "stackName"))
				},
			}},
		}.Run(t, tb.server)
		hooks, err := tb.outside().HookList(context.Background(), store.HookListParams{})
		require.NoError(t, err)
		assert.Empty(t, hooks, "the lifecycle ends with the webhook deleted")
	})
}

// TestConfigFailures: CheckConfig applies client.Config's rules (client.TestResolveRefusals has
// every one): each refusal is on the setting to fix, says how, and never quotes the token.
// Not parallel: it empties PULUMI_ACCESS_TOKEN, which the rules read.
func TestConfigFailures(t *testing.T) {
	t.Setenv("PULUMI_ACCESS_TOKEN", "")
	explicitURN := presource.NewURN("test", "webhooks", "", "pulumi:providers:pulumiservice", "hooks")
	cases := []struct {
		name     string
		urn      presource.URN
		config   map[string]property.Value
		property string
		reason   []string
	}{
		{"token without server (a program written for Pulumi Cloud)", providerURN,
			map[string]property.Value{"accessToken": str("tok-7f3a").WithSecret(true)},
			"accessToken", []string{"pulumiservice:apiUrl is not set", "`pulumi config set pulumiservice:apiUrl http://your-server:8080`",
				"`pulumi config rm pulumiservice:accessToken`"}},
		{"token without server, explicit provider", explicitURN,
			map[string]property.Value{"accessToken": str("tok-7f3a").WithSecret(true)},
			"accessToken", []string{`apiUrl (of provider "hooks") is not set`, `the argument apiUrl: "http://your-server:8080" of provider "hooks"`}},
		{"an unknown token without server", providerURN,
			map[string]property.Value{"accessToken": property.New(property.Computed)},
			"accessToken", []string{"pulumiservice:apiUrl is not set"}},
		{"server without token", providerURN,
			map[string]property.Value{"apiUrl": str("http://127.0.0.1:1")},
			"accessToken", []string{"pulumiservice:accessToken is not set", "`pulumi config set --secret pulumiservice:accessToken TOKEN`", "PULUMI_ACCESS_TOKEN"}},
		{"server with a blank token", providerURN,
			map[string]property.Value{"apiUrl": str("http://127.0.0.1:1"), "accessToken": str(" ").WithSecret(true)},
			"accessToken", []string{"pulumiservice:accessToken is not set"}},
		{"store and server", providerURN,
			map[string]property.Value{"storePath": str("/tmp/x.db"), "apiUrl": str("https://webhooks.example.com"), "accessToken": str("tok-7f3a")},
			"storePath", []string{"pulumiservice:storePath and pulumiservice:apiUrl are both set", "`pulumi config rm pulumiservice:storePath`"}},
		{"relative server URL", providerURN,
			map[string]property.Value{"apiUrl": str("webhooks.example.com"), "accessToken": str("tok-7f3a")},
			"apiUrl", []string{"is not an absolute http:// or https:// URL", "`pulumi config set pulumiservice:apiUrl http://your-server:8080`"}},
		{"credentials in the server URL", providerURN,
			map[string]property.Value{"apiUrl": str("http://ci:tok-7f3a@127.0.0.1:1"), "accessToken": str("tok-7f3a").WithSecret(true)},
			"apiUrl", []string{"pulumiservice:apiUrl carries user credentials"}},
		{"credentials in a malformed server URL", providerURN,
			map[string]property.Value{"apiUrl": str("ci:tok-7f3a@127.0.0.1"), "accessToken": str("tok-7f3a").WithSecret(true)},
			"apiUrl", []string{"pulumiservice:apiUrl carries user credentials"}},
		{"server URL without a host", providerURN,
			map[string]property.Value{"apiUrl": str("http://"), "accessToken": str("tok-7f3a").WithSecret(true)},
			"apiUrl", []string{"is not an absolute http:// or https:// URL"}},
		{"Pulumi Cloud as the server", providerURN,
			map[string]property.Value{"apiUrl": str("https://api.pulumi.com"), "accessToken": str("pwh_tok-7f3a").WithSecret(true)},
			"apiUrl", []string{"pulumiservice:apiUrl is https://api.pulumi.com, Pulumi Cloud", "`pulumi config rm pulumiservice:apiUrl`"}},
		{"a Pulumi Cloud token", providerURN,
			map[string]property.Value{"apiUrl": str("http://127.0.0.1:1"), "accessToken": str("pul-tok-7f3a").WithSecret(true)},
			"accessToken", []string{"pulumiservice:accessToken is a Pulumi Cloud access token", "pulumi-webhooks token create --org ORG"}},
		{"store path not a string", providerURN,
			map[string]property.Value{"storePath": property.New(3.0)},
			"storePath", []string{"storePath must be a string"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
			require.NoError(t, err)
			resp, err := s.CheckConfig(p.CheckRequest{Urn: tc.urn, Inputs: property.NewMap(tc.config)})
			require.NoError(t, err)
			require.Len(t, resp.Failures, 1, "%v", resp.Failures)
			assert.Equal(t, tc.property, resp.Failures[0].Property)
			for _, r := range tc.reason {
				assert.Contains(t, resp.Failures[0].Reason, r)
			}
			assert.NotContains(t, resp.Failures[0].Reason, "tok-7f3a", "the token never appears in messages")
		})
	}
}

// TestConfigureRefusesAlike: Configure without CheckConfig (the engine always checks first)
// applies the same rules with the same messages.
func TestConfigureRefusesAlike(t *testing.T) {
	t.Setenv("PULUMI_ACCESS_TOKEN", "")
	s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
	require.NoError(t, err)
	err = s.Configure(p.ConfigureRequest{Args: property.NewMap(map[string]property.Value{"accessToken": str("tok-7f3a")})})
	require.ErrorContains(t, err, "pulumiservice:apiUrl is not set")
	assert.Contains(t, err.Error(), "`pulumi config set pulumiservice:apiUrl http://your-server:8080`")
	assert.NotContains(t, err.Error(), "tok-7f3a")
	// A provider is configured once: a second one starts afresh.
	s, err = integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
	require.NoError(t, err)
	err = s.Configure(p.ConfigureRequest{Args: property.NewMap(map[string]property.Value{"apiUrl": str("http://127.0.0.1:1")})})
	require.ErrorContains(t, err, "pulumiservice:accessToken is not set")
}

// TestConfigAccepted: what CheckConfig lets through, PULUMI_ACCESS_TOKEN set or not. Not
// parallel: it sets the environment.
func TestConfigAccepted(t *testing.T) {
	for _, envToken := range []string{"", "pul-cloud-token-3e9b", "pwh_server-token-3e9b"} {
		t.Setenv("PULUMI_ACCESS_TOKEN", envToken)
		cases := map[string]map[string]property.Value{
			"nothing":                      {},
			"storePath":                    {"storePath": str("/tmp/hooks.db")},
			"storePath as a URL":           {"storePath": str("postgres://hooks@127.0.0.1:5432/hooks")},
			"server and token":             {"apiUrl": str("http://127.0.0.1:1"), "accessToken": str("tok-7f3a").WithSecret(true)},
			"an unknown server with token": {"apiUrl": property.New(property.Computed), "accessToken": str("tok-7f3a").WithSecret(true)},
			"server and an unknown token":  {"apiUrl": str("http://127.0.0.1:1"), "accessToken": property.New(property.Computed)},
		}
		if strings.HasPrefix(envToken, "pwh_") {
			cases["server, token from PULUMI_ACCESS_TOKEN"] = map[string]property.Value{"apiUrl": str("http://127.0.0.1:1")}
		}
		for name, config := range cases {
			t.Run(fmt.Sprintf("%s, PULUMI_ACCESS_TOKEN=%q", name, envToken), func(t *testing.T) {
				s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
				require.NoError(t, err)
				resp, err := s.CheckConfig(p.CheckRequest{Urn: providerURN, Inputs: property.NewMap(config)})
				require.NoError(t, err)
				require.Empty(t, resp.Failures)
				_, given := config["accessToken"]
				assert.False(t, has(resp.Inputs, "accessToken") && !given,
					"a token from the environment is never recorded in the provider's inputs")
			})
		}
	}
}

func TestConfigKeepsTokenSecret(t *testing.T) {
	t.Parallel()
	s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
	require.NoError(t, err)
	resp, err := s.CheckConfig(p.CheckRequest{Urn: providerURN, Inputs: property.NewMap(map[string]property.Value{
		"apiUrl": str("https://webhooks.example.com"), "accessToken": str("tok-7f3a"),
	})})
	require.NoError(t, err)
	require.Empty(t, resp.Failures)
	assert.True(t, resp.Inputs.Get("accessToken").Secret())
	assert.False(t, has(resp.Inputs, "storePath"))
}

// TestRemoteConfiguration: apiUrl and accessToken send every operation to the server; the
// embedded store is never opened, not even at its default path.
func TestRemoteConfiguration(t *testing.T) {
	// Not parallel: it points the embedded store's default path somewhere it can watch.
	unused := filepath.Join(t.TempDir(), "default.db")
	t.Setenv("PULUMI_WEBHOOKS_STORE", unused)
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	tb := &testBundle{server: newServer(t, property.NewMap(map[string]property.Value{
		"apiUrl":      str(srv.URL + "/"), // a trailing slash is fine
		"accessToken": str(srv.Tokens[remoteOrg]).WithSecret(true),
	})), api: srv}
	c := tb.created(t, stackHook())
	ref, err := ParseID(c.id)
	require.NoError(t, err)
	h, err := srv.Engine.HookGet(context.Background(), ref)
	require.NoError(t, err, "the hook is in the server's store")
	assert.Equal(t, "Stack hook", h.DisplayName)
	require.NoError(t, tb.server.Delete(p.DeleteRequest{ID: c.id, Urn: webhookURN, Properties: c.state}))
	_, err = srv.Engine.HookGet(context.Background(), ref)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = os.Stat(unused)
	require.ErrorIs(t, err, os.ErrNotExist, "remote mode never opens the embedded store")
}

// TestRemoteTokenFromEnvironment: a program that sets only apiUrl (one setting added to a
// program written for the official provider, which relies on PULUMI_ACCESS_TOKEN) works with
// the token from the environment, and a token the server refuses is named by where it came
// from. Not parallel: it sets the environment.
func TestRemoteTokenFromEnvironment(t *testing.T) {
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	t.Setenv("PULUMI_ACCESS_TOKEN", srv.Tokens[remoteOrg])
	tb := &testBundle{server: newServer(t, property.NewMap(map[string]property.Value{"apiUrl": str(srv.URL)})), api: srv}
	c := tb.created(t, stackHook())
	ref, err := ParseID(c.id)
	require.NoError(t, err)
	_, err = srv.Engine.HookGet(context.Background(), ref)
	require.NoError(t, err, "the hook is in the server's store")

	const wrong = "pwh_never-shown-5d1c"
	t.Setenv("PULUMI_ACCESS_TOKEN", wrong)
	refused := newServer(t, property.NewMap(map[string]property.Value{"apiUrl": str(srv.URL)}))
	_, err = refused.Create(p.CreateRequest{Urn: webhookURN, Properties: c.inputs})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused the access token from the environment variable PULUMI_ACCESS_TOKEN")
	assert.Contains(t, err.Error(), "`pulumi config set --secret pulumiservice:accessToken TOKEN`")
	assert.NotContains(t, err.Error(), wrong)
	assertCleanError(t, err)
}

// TestEnvironmentTokenKeepsEmbeddedStore: PULUMI_ACCESS_TOKEN in the environment of a program
// on a self-managed backend leaves the provider on the embedded store. Not parallel: it sets
// the environment.
func TestEnvironmentTokenKeepsEmbeddedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "default.db")
	t.Setenv("PULUMI_WEBHOOKS_STORE", path)
	t.Setenv("PULUMI_ACCESS_TOKEN", "pul-env-token-3e9b")
	tb := &testBundle{server: newServer(t, property.NewMap(nil))}
	c := tb.created(t, stackHook())
	_, err := os.Stat(path)
	require.NoError(t, err, "the webhook went to the embedded store")
	require.NoError(t, tb.server.Delete(p.DeleteRequest{ID: c.id, Urn: webhookURN, Properties: c.state}))
}

// TestRemoteServerErrors: what the server refuses reaches the user with the server's own
// message and the property to fix, without Go internals or the token; and a refresh that
// cannot reach the server fails instead of dropping webhooks from the state.
func TestRemoteServerErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true})
	configured := func(t *testing.T, apiURL, token string) *testBundle {
		t.Helper()
		return &testBundle{api: srv, server: newServer(t, property.NewMap(map[string]property.Value{
			"apiUrl": str(apiURL), "accessToken": str(token).WithSecret(true),
		}))}
	}
	good := configured(t, srv.URL, srv.Tokens[remoteOrg])
	existing := good.created(t, orgHook())

	t.Run("wrong token", func(t *testing.T) {
		t.Parallel()
		const wrong = "pwh_wrong-token-0b9e"
		tb := configured(t, srv.URL, wrong)
		_, err := tb.server.Create(p.CreateRequest{Urn: webhookURN, Properties: tb.check(t, orgHook())})
		assertCleanError(t, err)
		assert.Contains(t, err.Error(), "cannot create webhook in acme: the pulumi-webhooks server refused the access token")
		assert.Contains(t, err.Error(), "invalid or revoked API token", "the server's message")
		assert.Contains(t, err.Error(), "accessToken")
		assert.NotContains(t, err.Error(), wrong)

		// A refresh with a refused token fails; it must not report the webhook as deleted.
		_, err = tb.server.Read(p.ReadRequest{ID: existing.id, Urn: webhookURN, Properties: existing.state, Inputs: existing.inputs})
		assertCleanError(t, err)
		assert.Contains(t, err.Error(), "cannot read webhook "+existing.id)
		assert.NotContains(t, err.Error(), wrong)
		err = tb.server.Delete(p.DeleteRequest{ID: existing.id, Urn: webhookURN, Properties: existing.state})
		require.ErrorContains(t, err, "refused the access token", "a refused delete is not a successful one")
		got := good.read(t, existing)
		assert.Equal(t, existing.id, got.ID, "the webhook is still there")
	})

	t.Run("another organization", func(t *testing.T) {
		t.Parallel()
		// A deliberate difference: the embedded store takes any organization, while a server
		// token reaches only its own, and the server answers 404 for the others.
		in := orgHook()
		in["organizationName"] = str("globex")
		_, err := good.server.Create(p.CreateRequest{Urn: webhookURN, Properties: good.check(t, in)})
		assertCleanError(t, err)
		assert.Contains(t, err.Error(), `cannot create webhook in globex: the access token belongs to another organization than "globex"`)
		assert.Contains(t, err.Error(), `organization "globex" not found`, "the server's message")
		assert.Contains(t, err.Error(), "pulumi-webhooks token create --org globex")
		assert.Contains(t, err.Error(), "organizationName")

		embedded := setup(t, modes[0])
		id, _, _ := embedded.create(t, in)
		assert.True(t, strings.HasPrefix(id, "globex/"), "embedded mode serves every organization")
	})

	t.Run("token of another organization", func(t *testing.T) {
		t.Parallel()
		// The server answers 404 for another organization's webhooks, as for missing ones; a
		// refresh with such a token must fail and keep the webhook, not drop it from the state.
		tb := configured(t, srv.URL, srv.Tokens["globex"])
		wantMessage := func(t *testing.T, err error, op string) {
			t.Helper()
			assertCleanError(t, err)
			assert.Contains(t, err.Error(), "cannot "+op+" webhook "+existing.id+`: the access token belongs to another organization than "acme"`)
			assert.Contains(t, err.Error(), "pulumi-webhooks token create --org acme")
			assert.Contains(t, err.Error(), "accessToken")
			assert.NotContains(t, err.Error(), "no such webhook")
			for _, tok := range srv.Tokens {
				assert.NotContains(t, err.Error(), tok)
			}
		}
		resp, err := tb.server.Read(p.ReadRequest{ID: existing.id, Urn: webhookURN, Properties: existing.state, Inputs: existing.inputs})
		wantMessage(t, err, "read")
		assert.Empty(t, resp.ID)
		_, err = tb.update(t, existing, orgHook(), false)
		wantMessage(t, err, "update")
		err = tb.server.Delete(p.DeleteRequest{ID: existing.id, Urn: webhookURN, Properties: existing.state})
		wantMessage(t, err, "delete")

		// Import with that token fails the same way rather than claiming the ID is wrong.
		_, err = tb.server.Read(p.ReadRequest{ID: existing.id, Urn: webhookURN})
		require.ErrorContains(t, err, "cannot import webhook "+existing.id+`: the access token belongs to another organization than "acme"`)

		got := good.read(t, existing)
		assert.Equal(t, existing.id, got.ID, "the webhook is still there")
		assert.Equal(t, existing.state, got.Properties, "and unchanged")
	})

	t.Run("unreachable server", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		dead := "http://" + ln.Addr().String()
		require.NoError(t, ln.Close())
		tb := configured(t, dead, srv.Tokens[remoteOrg])

		_, err = tb.server.Create(p.CreateRequest{Urn: webhookURN, Properties: tb.check(t, orgHook())})
		assertCleanError(t, err)
		assert.Contains(t, err.Error(), "cannot create webhook in acme: reach the pulumi-webhooks server at "+dead)
		assert.Contains(t, err.Error(), "apiUrl")
		assert.NotContains(t, err.Error(), srv.Tokens[remoteOrg])

		_, err = tb.server.Read(p.ReadRequest{ID: existing.id, Urn: webhookURN, Properties: existing.state, Inputs: existing.inputs})
		require.ErrorContains(t, err, "cannot read webhook "+existing.id+": reach the pulumi-webhooks server",
			"an unreachable server is an error, not a deleted webhook")
		_, err = tb.update(t, existing, orgHook(), false)
		require.ErrorContains(t, err, "cannot update webhook "+existing.id+": reach the pulumi-webhooks server")
		err = tb.server.Delete(p.DeleteRequest{ID: existing.id, Urn: webhookURN, Properties: existing.state})
		require.ErrorContains(t, err, "cannot delete webhook "+existing.id+": reach the pulumi-webhooks server")
	})
}

func TestNoConfigurationUsesDefaultStore(t *testing.T) {
	// Not parallel: it sets the environment.
	path := filepath.Join(t.TempDir(), "nested", "default.db")
	t.Setenv("PULUMI_WEBHOOKS_STORE", path)
	tb := &testBundle{server: newServer(t, property.Map{})}
	id, _, _ := tb.create(t, orgHook())
	_, err := os.Stat(path)
	require.NoError(t, err, "the webhook went to the default store")
	require.True(t, strings.HasPrefix(id, "acme/"))
}

func TestStoreCannotBeOpened(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tb := &testBundle{server: newServer(t, property.NewMap(map[string]property.Value{"storePath": str(dir)}))}
	checked := tb.check(t, orgHook())
	_, err := tb.server.Create(p.CreateRequest{Urn: webhookURN, Properties: checked})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot create webhook in acme: embedded store: open the store "+dir)
	assert.Contains(t, err.Error(), "pulumiservice:storePath or PULUMI_WEBHOOKS_STORE")
	assert.Contains(t, err.Error(), "is a directory: give the path of a database file")

	_, err = tb.server.Read(p.ReadRequest{ID: "acme/x", Urn: webhookURN})
	require.ErrorContains(t, err, "cannot import webhook acme/x: embedded store")
}

func TestUnconfiguredProvider(t *testing.T) {
	t.Parallel()
	s, err := integration.NewServer(t.Context(), Name, semverVersion(t), integration.WithProvider(Provider()))
	require.NoError(t, err)
	checked, err := s.Check(p.CheckRequest{Urn: webhookURN, Inputs: property.NewMap(orgHook())})
	require.NoError(t, err)
	_, err = s.Create(p.CreateRequest{Urn: webhookURN, Properties: checked.Inputs})
	require.ErrorContains(t, err, "was not configured")
}

// TestConfigDiff: every change of the configuration updates the provider in place, as with the
// official provider: no replacement, so a rotated token never touches a webhook.
func TestConfigDiff(t *testing.T) {
	t.Parallel()
	sp := func(s string) *string { return &s }
	cases := []struct {
		name       string
		old, new   Config
		want       map[string]p.DiffKind
		hasChanges bool
	}{
		{"nothing changed", Config{APIURL: sp("http://a"), AccessToken: sp("t1")}, Config{APIURL: sp("http://a"), AccessToken: sp("t1")}, map[string]p.DiffKind{}, false},
		{"token rotated", Config{APIURL: sp("http://a"), AccessToken: sp("t1")}, Config{APIURL: sp("http://a"), AccessToken: sp("t2")},
			map[string]p.DiffKind{"accessToken": p.Update}, true},
		{"token now from the environment", Config{APIURL: sp("http://a"), AccessToken: sp("t1")}, Config{APIURL: sp("http://a")},
			map[string]p.DiffKind{"accessToken": p.Delete}, true},
		{"embedded to a server", Config{}, Config{APIURL: sp("http://a"), AccessToken: sp("t1")},
			map[string]p.DiffKind{"apiUrl": p.Add, "accessToken": p.Add}, true},
		{"another server", Config{APIURL: sp("http://a")}, Config{APIURL: sp("http://b")},
			map[string]p.DiffKind{"apiUrl": p.Update}, true},
		{"store path dropped", Config{StorePath: sp("/a.db")}, Config{},
			map[string]p.DiffKind{"storePath": p.Delete}, true},
		{"store path added", Config{}, Config{StorePath: sp("/a.db")},
			map[string]p.DiffKind{"storePath": p.Add}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := (&Config{}).Diff(t.Context(), infer.DiffRequest[*Config, *Config]{State: &tc.old, Inputs: &tc.new})
			require.NoError(t, err)
			assert.Equal(t, tc.hasChanges, resp.HasChanges)
			got := map[string]p.DiffKind{}
			for k, d := range resp.DetailedDiff {
				got[k] = d.Kind
				assert.True(t, d.InputDiff)
			}
			assert.Equal(t, tc.want, got)
		})
	}
}
