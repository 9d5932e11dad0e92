package webhook

import (
	"fmt"
	"slices"
	"strings"
)

// OrgDisplayNames maps organization names to their display names: the organization.name of
// their payloads. An organization without one is shown by its name.
type OrgDisplayNames map[string]string

// ParseOrgDisplayName reads one "ORG=NAME" setting, as `serve --org-display-name` takes it.
// The error says what is wrong and the fix; the caller names the flag.
func ParseOrgDisplayName(s string) (org, name string, err error) {
	org, name, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%s has no '=': give ORG=NAME, e.g. acme=\"Acme Corp\"", Quote(s))
	}
	if err := CheckScopeName(org); err != nil {
		return "", "", fmt.Errorf("organization %s %w", Quote(org), err)
	}
	if strings.TrimSpace(name) == "" {
		return "", "", fmt.Errorf("the display name of %s is empty: give ORG=NAME, or leave the organization out to show its name", Quote(org))
	}
	if err := CheckText(name, DisplayNameMaxLen); err != nil {
		return "", "", fmt.Errorf("the display name of %s %w", Quote(org), err)
	}
	return org, name, nil
}

// ParseOrgDisplayNames reads several "ORG=NAME" settings; an organization given twice is an
// error, so that no setting is silently lost.
func ParseOrgDisplayNames(settings []string) (OrgDisplayNames, error) {
	out := OrgDisplayNames{}
	for _, s := range settings {
		org, name, err := ParseOrgDisplayName(s)
		if err != nil {
			return nil, err
		}
		if prev, ok := out[org]; ok {
			return nil, fmt.Errorf("organization %s is given twice (%s and %s): give each organization one display name", Quote(org), Quote(prev), Quote(name))
		}
		out[org] = name
	}
	return out, nil
}

// Validate checks every entry as ParseOrgDisplayName does.
func (m OrgDisplayNames) Validate() error {
	orgs := make([]string, 0, len(m))
	for org := range m {
		orgs = append(orgs, org)
	}
	slices.Sort(orgs)
	for _, org := range orgs {
		if _, _, err := ParseOrgDisplayName(org + "=" + m[org]); err != nil {
			return err
		}
	}
	return nil
}
