package webhook

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on what a spec and an event may hold. Every string and list a caller gives is
// bounded, so neither a stored hook nor an error about one can grow with the input.
const (
	// HookNameMaxLen bounds a hook's name, as Pulumi Cloud does: at most 32 characters of
	// [a-zA-Z0-9._-]. Generated names (8 hex digits) fit.
	HookNameMaxLen = 32
	// ScopeNameMaxLen bounds organization, project, stack and environment names (Pulumi
	// allows 100 characters for project and stack names).
	ScopeNameMaxLen = 100
	// DisplayNameMaxLen bounds a display name, in characters.
	DisplayNameMaxLen = 256
	// PayloadURLMaxLen bounds a payload URL, in bytes.
	PayloadURLMaxLen = 2048
	// SecretMaxLen bounds a webhook secret, in bytes.
	SecretMaxLen = 1024
	// ListMaxLen bounds the filters and the groups list. Each filter or group is needed at
	// most once, but a repeat is accepted (as Pulumi Cloud accepts it; Spec.Advise warns),
	// so the bound leaves room beyond every one once.
	ListMaxLen = 256
	// FieldErrorsMax is how many field errors an error reports one by one; the rest are
	// counted ("and 7 more problems").
	FieldErrorsMax = 20
	// quotedMaxLen bounds how much of a value an error message repeats.
	quotedMaxLen = 64
)

// RemoveSecret is the secret that, in an update, removes a webhook's secret, as Pulumi Cloud
// takes it: an empty secret in an update leaves the secret as it is. It cannot be a secret.
const RemoveSecret = "__remove-secret"

// CheckSecret checks a webhook secret: at most SecretMaxLen bytes, and not RemoveSecret. The
// error says what is wrong and the fix, never the secret; the caller names the field.
func CheckSecret(s string) error {
	if len(s) > SecretMaxLen {
		return fmt.Errorf("is %d bytes long: use at most %d", len(s), SecretMaxLen)
	}
	if s == RemoveSecret {
		return fmt.Errorf("is %q, the value that removes a secret in an update: leave the secret out for a webhook without one, or choose another secret", RemoveSecret)
	}
	return nil
}

// Quote returns v quoted for an error message, cut to a few dozen characters so that an error
// never grows with the input.
func Quote(v string) string {
	if utf8.RuneCountInString(v) <= quotedMaxLen {
		return strconv.Quote(v)
	}
	n := 0
	for i := range v {
		if n == quotedMaxLen {
			return strconv.Quote(v[:i]) + fmt.Sprintf("... (%d bytes)", len(v))
		}
		n++
	}
	return strconv.Quote(v)
}

// CheckHookName checks a hook's name as Pulumi Cloud accepts it: 1 to HookNameMaxLen
// letters, digits, '.', '_' and '-', and not "." or "..". The error says what is wrong and the
// fix; the caller names the field.
func CheckHookName(v string) error {
	if err := checkPathSegment(v, HookNameMaxLen); err != nil {
		return err
	}
	for i, r := range v {
		if r < utf8.RuneSelf && (r == '.' || r == '_' || r == '-' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			continue
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(v[i:]); size == 1 {
				return fmt.Errorf("is not valid UTF-8: use letters, digits, '.', '_' and '-'")
			}
		}
		return fmt.Errorf("%s contains %s: use only letters, digits, '.', '_' and '-'", Quote(v), describeRune(r))
	}
	return nil
}

// CheckHookRefName checks the name of a webhook that already exists, as a reference names it
// (a URL, a resource ID, a CLI argument): as loosely as CheckScopeName, so that webhooks named
// before CheckHookName's rule stay reachable. New names are checked by CheckHookName.
func CheckHookRefName(v string) error { return CheckScopeName(v) }

// CheckScopeName checks an organization, project, stack or environment name, which becomes a
// path segment: 1 to ScopeNameMaxLen bytes of UTF-8 without slashes, white space, control,
// zero-width or text-direction characters, and not "." or "..".
func CheckScopeName(v string) error {
	if err := checkPathSegment(v, ScopeNameMaxLen); err != nil {
		return err
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("is not valid UTF-8: use the bare name")
	}
	if i := strings.IndexFunc(v, func(r rune) bool { return r == '/' || r == '\\' || unicode.IsSpace(r) || unsafeRune(r) }); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		return fmt.Errorf("%s contains %s: use the bare name", Quote(v), describeRune(r))
	}
	return nil
}

func checkPathSegment(v string, maxLen int) error {
	switch {
	case v == "":
		return fmt.Errorf("is empty: give a name of letters, digits, '.', '_' and '-'")
	case len(v) > maxLen:
		return fmt.Errorf("is %d bytes long: use at most %d", len(v), maxLen)
	case v == "." || v == "..":
		return fmt.Errorf("%s is a path, not a name: use letters, digits, '.', '_' and '-'", Quote(v))
	}
	return nil
}

// CheckText checks free text shown to people, such as a display name: valid UTF-8, at most
// maxLen characters, and no control, format (zero-width, bidirectional) or line-separator
// characters, which would let it rewrite a terminal or disguise itself.
func CheckText(v string, maxLen int) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("is not valid UTF-8: send UTF-8 text")
	}
	if n := utf8.RuneCountInString(v); n > maxLen {
		return fmt.Errorf("is %d characters long: use at most %d", n, maxLen)
	}
	for _, r := range v {
		if unsafeRune(r) {
			return fmt.Errorf("contains the invisible character U+%04X: remove control, zero-width and text-direction characters", r)
		}
	}
	return nil
}

// unsafeRune reports whether r is a control character (C0, DEL, C1 such as NEL), a format
// character (zero-width space and joiners, bidirectional marks and overrides, BOM), or a line
// or paragraph separator.
func unsafeRune(r rune) bool {
	return unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)
}

// HasUnsafeRunes reports whether s has a character CheckText refuses, or is not UTF-8.
func HasUnsafeRunes(s string) bool {
	return !utf8.ValidString(s) || strings.IndexFunc(s, unsafeRune) >= 0
}

// Printable returns s with every character CheckText refuses replaced by its escape (\x1b,
// \u202e), for showing text that was stored before the rules, or came from elsewhere, on a
// terminal.
func Printable(s string) string {
	if !HasUnsafeRunes(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				fmt.Fprintf(&b, `\x%02x`, s[i])
				continue
			}
			b.WriteRune(r)
		case unsafeRune(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func describeRune(r rune) string {
	if r == '/' || unicode.IsSpace(r) {
		return "a slash or white space"
	}
	if r == '\\' {
		return "a backslash"
	}
	if unsafeRune(r) {
		return fmt.Sprintf("the invisible character U+%04X", r)
	}
	return fmt.Sprintf("%q", r)
}
