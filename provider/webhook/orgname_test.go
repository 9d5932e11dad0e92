package webhook

import (
	"strings"
	"testing"
)

func TestParseOrgDisplayNames(t *testing.T) {
	t.Parallel()
	got, err := ParseOrgDisplayNames([]string{"acme=Acme Corp", "crazy-adventures=Crazy Adventures = Inc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["acme"] != "Acme Corp" || got["crazy-adventures"] != "Crazy Adventures = Inc" {
		t.Errorf("ParseOrgDisplayNames = %v", got)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate() of parsed names: %v", err)
	}
	if got, err := ParseOrgDisplayNames(nil); err != nil || len(got) != 0 {
		t.Errorf("ParseOrgDisplayNames(nil) = %v, %v", got, err)
	}
}

func TestParseOrgDisplayNamesErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   []string
		want []string
	}{
		{[]string{"acme"}, []string{`"acme" has no '='`, "ORG=NAME"}},
		{[]string{"=Acme"}, []string{`organization ""`}},
		{[]string{"ac/me=Acme"}, []string{`organization "ac/me"`, "bare name"}},
		{[]string{"acme="}, []string{`display name of "acme" is empty`}},
		{[]string{"acme=   "}, []string{`display name of "acme" is empty`}},
		{[]string{"acme=Ac\u202eme"}, []string{`display name of "acme"`, "invisible character U+202E"}},
		{[]string{"acme=" + strings.Repeat("x", DisplayNameMaxLen+1)}, []string{`display name of "acme"`, "at most 256"}},
		{[]string{"acme=A", "acme=B"}, []string{`"acme" is given twice`, `"A"`, `"B"`}},
	} {
		_, err := ParseOrgDisplayNames(tc.in)
		if err == nil {
			t.Errorf("ParseOrgDisplayNames(%q) accepted", tc.in)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseOrgDisplayNames(%q) = %q, want it to contain %q", tc.in, err, w)
			}
		}
	}
	if err := (OrgDisplayNames{"acme": "ok", "b/ad": "x"}).Validate(); err == nil || !strings.Contains(err.Error(), `"b/ad"`) {
		t.Errorf("Validate() of a bad organization = %v", err)
	}
	if err := (OrgDisplayNames{"acme": ""}).Validate(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Validate() of an empty display name = %v", err)
	}
}
