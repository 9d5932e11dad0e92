package webhook

import (
	"fmt"
	"strings"
	"testing"
)

func TestCheckHookName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "my-hook_1.v2", "4b0d0671", strings.Repeat("x", HookNameMaxLen), "...", ".hidden", "a..b"} {
		if err := CheckHookName(ok); err != nil {
			t.Errorf("CheckHookName(%q) = %v, want nil", ok, err)
		}
	}
	for _, tc := range []struct{ in, want string }{
		{"", "is empty"},
		{strings.Repeat("x", HookNameMaxLen+1), "at most 32"},
		{".", "is a path"},
		{"..", "is a path"},
		{"../etc", "slash"},
		{"a/b", "slash"},
		{`a\b`, "backslash"},
		{"a b", "white space"},
		{"a\x00b", "U+0000"},
		{"caf\u00e9", "'é'"},
		{"a\u200bb", "U+200B"},
		{"a\xffb", "not valid UTF-8"},
		{"a:b", "':'"},
		{"a%2fb", "'%'"},
	} {
		err := CheckHookName(tc.in)
		if err == nil {
			t.Errorf("CheckHookName(%q) = nil, want an error", tc.in)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckHookName(%q) = %q, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

// Scope names are path segments too, but keep Pulumi's wider alphabet ("web?site" is escaped
// in links); path-like and invisible characters are refused.
func TestCheckScopeName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"web", "web?site", "prod#1", "café", strings.Repeat("p", ScopeNameMaxLen)} {
		if err := CheckScopeName(ok); err != nil {
			t.Errorf("CheckScopeName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", `a\b`, "a b", "a\x00", "a\u202e", "a\u200b", "a\xff", strings.Repeat("p", ScopeNameMaxLen+1)} {
		if err := CheckScopeName(bad); err == nil {
			t.Errorf("CheckScopeName(%q) = nil, want an error", bad)
		}
	}
}

// Display names are shown on terminals and in chat messages: none of these may be stored.
func TestSpecValidateDisplayNameCharacters(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"a\x00b", "bell\x07", "esc\x1b[31mred", "two\nlines", "cr\r", "tab\t", "del\x7f", "nel\u0085",
		"zero\u200bwidth", "zwj\u200d", "word\u2060joiner", "bom\ufeff", "rtl\u202eoverride", "isolate\u2066x\u2069",
		"lrm\u200e", "arabic\u061cmark", "line\u2028sep", "para\u2029sep", "bad\xffutf8",
	} {
		s := orgSpec()
		s.DisplayName = bad
		errs := fieldErrors(t, s)
		hasError(t, errs, "displayName")
		if strings.ContainsAny(errs.Error(), "\x00\x07\x1b\n\r\x7f\u0085\u200b\u202e\u2066") {
			t.Errorf("the error for %q repeats the character: %q", bad, errs.Error())
		}
	}
	s := orgSpec()
	s.DisplayName = strings.Repeat("é", DisplayNameMaxLen)
	if err := s.Validate(); err != nil {
		t.Errorf("a %d-character display name: %v", DisplayNameMaxLen, err)
	}
	s.DisplayName = "Déploiements 🚀 — prod (ünïcode)"
	if err := s.Validate(); err != nil {
		t.Errorf("printable unicode display name: %v", err)
	}
	s.DisplayName += strings.Repeat("x", DisplayNameMaxLen)
	hasError(t, fieldErrors(t, s), "displayName", "at most 256")
}

func TestSpecValidateNames(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"..", ".", "../x", "a/b", strings.Repeat("n", 33), "a\x1bb", "name\u202e"} {
		s := orgSpec()
		s.Name = bad
		hasError(t, fieldErrors(t, s), "name")
	}
	for _, tc := range []struct {
		field string
		set   func(*Spec)
	}{
		{"organizationName", func(s *Spec) { s.Org = ".." }},
		{"projectName", func(s *Spec) { s.Project = strings.Repeat("p", 101) }},
		{"stackName", func(s *Spec) { s.Stack = "prod\x00" }},
		{"stackName", func(s *Spec) { s.Stack = "." }},
	} {
		s := stackSpec()
		tc.set(&s)
		hasError(t, fieldErrors(t, s), tc.field)
	}
	e := envSpec()
	e.Environment = "dev\u200b"
	hasError(t, fieldErrors(t, e), "environmentName", "U+200B")
	// The deployment target names a stack: the same rules.
	for _, bad := range []string{"../prod", "web/..", "web/pr\u202eod", "web/" + strings.Repeat("s", 101)} {
		d := stackSpec()
		d.Format, d.PayloadURL = FormatPulumiDeployments, bad
		hasError(t, fieldErrors(t, d), "payloadUrl")
	}
}

func TestSpecValidateURLAndSecretBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"http://example.com:0/hook", `port "0"`},
		{"http://example.com:65536/hook", `port "65536"`},
		{"http://example.com:99999999999999999999/hook", "is not"},
		{"http://example.com:/hook", "empty port"},
		{"https://example.com/" + strings.Repeat("a", PayloadURLMaxLen), "at most 2048"},
		{"https://example.com/\u202ehook", "text-direction"},
		{"http://:8080/hook", "no host"},
	} {
		s := orgSpec()
		s.PayloadURL = tc.url
		errs := fieldErrors(t, s)
		hasError(t, errs, "payloadUrl", tc.want)
		if len(errs.Error()) > 400 {
			t.Errorf("error for a %d-byte URL is %d bytes long", len(tc.url), len(errs.Error()))
		}
	}
	for _, ok := range []string{"http://example.com:1/hook", "https://example.com:65535/hook", "http://[::1]:8080/x"} {
		s := orgSpec()
		s.PayloadURL = ok
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	s := orgSpec()
	s.Secret = strings.Repeat("s", SecretMaxLen)
	if err := s.Validate(); err != nil {
		t.Errorf("a %d-byte secret: %v", SecretMaxLen, err)
	}
	s.Secret += "s"
	errs := fieldErrors(t, s)
	hasError(t, errs, "secret", "at most 1024")
	if strings.Contains(errs.Error(), "sss") {
		t.Errorf("the error repeats the secret: %q", errs.Error())
	}
}

// An error never grows with the input: 60,000 unknown filters give one error about the list's
// length and at most ListMaxLen per-entry errors, of which FieldErrorsMax are spelt out.
func TestSpecValidateBoundsLists(t *testing.T) {
	t.Parallel()
	s := orgSpec()
	for i := range 60000 {
		s.Filters = append(s.Filters, Filter(fmt.Sprintf("bogus_filter_%d", i)))
	}
	for range 1000 {
		s.Groups = append(s.Groups, GroupStacks)
	}
	errs := fieldErrors(t, s)
	hasError(t, errs, "filters", "60000 entries", fmt.Sprintf("list at most %d", ListMaxLen))
	hasError(t, errs, "groups", "1000 entries")
	if len(errs) > ListMaxLen+2 {
		t.Errorf("%d field errors for two lists", len(errs))
	}
	msg := errs.Error()
	if len(msg) > 64<<10 || !strings.Contains(msg, "more problems") {
		t.Errorf("error message is %d bytes; tail %q", len(msg), msg[max(0, len(msg)-80):])
	}
	shown, more := errs.Reported()
	if len(shown) != FieldErrorsMax || more != len(errs)-FieldErrorsMax {
		t.Errorf("Reported = %d shown, %d more of %d", len(shown), more, len(errs))
	}
	// A huge unknown value is quoted in part only.
	s = orgSpec()
	s.Filters = []Filter{Filter(strings.Repeat("z", 1<<20))}
	s.Format = Format(strings.Repeat("f", 1<<20))
	if msg := fieldErrors(t, s).Error(); len(msg) > 4096 {
		t.Errorf("error about a 1 MiB filter name is %d bytes", len(msg))
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain é 🚀":          "plain é 🚀",
		"esc\x1b[2J":         `esc\x1b[2J`,
		"nl\nnul\x00":        `nl\nnul\x00`,
		"rtl\u202e":          `rtl\u202e`,
		"zw\u200b":           `zw\u200b`,
		"bad\xff":            `bad\xff`,
		"nel\u0085del\u007f": `nel\u0085del\x7f`,
	} {
		if got := Printable(in); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckSecret(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "s3cret", strings.Repeat("x", SecretMaxLen), RemoveSecret + "x", "whsec_abc"} {
		if err := CheckSecret(ok); err != nil {
			t.Errorf("CheckSecret(%d bytes) = %v", len(ok), err)
		}
	}
	err := CheckSecret(strings.Repeat("x", SecretMaxLen+1))
	if err == nil || !strings.Contains(err.Error(), "1025 bytes long: use at most 1024") {
		t.Errorf("CheckSecret(too long) = %v", err)
	}
	err = CheckSecret(RemoveSecret)
	if err == nil || !strings.Contains(err.Error(), "removes a secret in an update") || !strings.Contains(err.Error(), "choose another secret") {
		t.Errorf("CheckSecret(RemoveSecret) = %v", err)
	}
	s := orgSpec()
	s.Secret = RemoveSecret
	hasError(t, fieldErrors(t, s), "secret", "removes a secret")
}

// TestSpecListBound: ListMaxLen entries are accepted (repeats only advised on), one more is
// refused on the list.
func TestSpecListBound(t *testing.T) {
	t.Parallel()
	s := orgSpec()
	for range ListMaxLen {
		s.Filters = append(s.Filters, UpdateFailed)
		s.Groups = append(s.Groups, GroupStacks)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("%d repeated entries: %v", ListMaxLen, err)
	}
	if n := len(s.Advise()); n != 2*(ListMaxLen-1) {
		t.Errorf("Advise has %d entries, want one per repeat (%d)", n, 2*(ListMaxLen-1))
	}
	s.Filters = append(s.Filters, UpdateFailed)
	s.Groups = append(s.Groups, GroupStacks)
	errs := fieldErrors(t, s)
	hasError(t, errs, "filters", fmt.Sprintf("has %d entries", ListMaxLen+1))
	hasError(t, errs, "groups", fmt.Sprintf("has %d entries", ListMaxLen+1))
}
