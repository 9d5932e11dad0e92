// Package webhook is the vocabulary every other package speaks: event filters and the kinds
// they belong to, filter groups, payload formats, webhook scopes, the user-facing webhook
// specification with its validation rules, and the JSON payloads of each event kind.
//
// It depends on nothing else in this module. The names and string values match the Pulumi
// Service provider's schema and the Pulumi Cloud webhook API exactly, so values read from a
// Pulumi program, a REST request or the store can be compared without translation.
package webhook
