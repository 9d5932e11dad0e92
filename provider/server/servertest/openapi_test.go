package servertest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps the errors Check reports instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestCheckAllowsOnlyListedAdditions shows that the conformance check refuses a query
// parameter or an answer header that is neither documented nor one of our listed additions,
// and accepts the listed ones where they are listed.
func TestCheckAllowsOnlyListedAdditions(t *testing.T) {
	t.Parallel()
	o := LoadOpenAPI(t)
	cases := []struct {
		name   string
		method string
		target string
		status int
		header map[string]string
		body   string
		want   string // "" for no error, else a part of the error
	}{
		{"paged hook listing", "GET", "/api/orgs/acme/hooks?limit=2&continuationToken=abc", 200,
			map[string]string{"X-Continuation-Token": "abc", "Link": `</x>; rel="next"`}, `[]`, ""},
		{"paged stack hook listing", "GET", "/api/stacks/acme/web/prod/hooks?continuationToken=abc", 200,
			map[string]string{"X-Continuation-Token": "abc"}, `[]`, ""},
		{"paged environment hook listing", "GET", "/api/esc/environments/acme/app/dev/hooks?limit=1", 200,
			map[string]string{"Link": `</x>; rel="next"`}, `[]`, ""},
		{"delivery log with before", "GET", "/api/orgs/acme/hooks/h/deliveries?limit=2&before=7", 200,
			map[string]string{"X-Next-Before": "3", "X-Continuation-Token": "abc"}, `[]`, ""},
		{"unknown query parameter", "GET", "/api/orgs/acme/hooks?bogus=1", 200, nil, `[]`, `query parameter "bogus"`},
		{"before on the hook listing", "GET", "/api/stacks/acme/web/prod/hooks?before=3", 200, nil, `[]`, `query parameter "before"`},
		{"paging of a single hook", "GET", "/api/orgs/acme/hooks/h?limit=1", 404, nil, `{"code":404,"message":"x"}`, `query parameter "limit"`},
		{"unknown answer header", "GET", "/api/orgs/acme/hooks", 200, map[string]string{"X-Other": "1"}, `[]`, `header "X-Other"`},
		{"X-Next-Before on the hook listing", "GET", "/api/orgs/acme/hooks", 200, map[string]string{"X-Next-Before": "1"}, `[]`, `header "X-Next-Before"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(c.method, "http://127.0.0.1"+c.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{"Content-Type": {"application/json"}}
			for k, v := range c.header {
				h.Set(k, v)
			}
			rec := &recorder{TB: t}
			o.Check(rec, req, nil, c.status, h, []byte(c.body))
			got := strings.Join(rec.errs, "\n")
			switch {
			case c.want == "" && got != "":
				t.Errorf("errors %s, want none", got)
			case c.want != "" && !strings.Contains(got, c.want):
				t.Errorf("errors %q, want one about %s", got, c.want)
			}
		})
	}
}
