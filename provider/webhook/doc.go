// Package webhook is the vocabulary every other package speaks: event filters and the kinds
// they belong to, filter groups, payload formats, webhook scopes, the user-facing webhook
// specification with its validation rules, and the JSON payloads of each event kind.
//
// It is the one home of the input rules: the REST server, the provider's Check, the CLI and
// the engine all call Spec.Validate (and CheckHookName, CheckHookRefName, CheckScopeName,
// CheckText, CheckSecret); an emitted event is checked by Event.Validate (which kinds of event are about a
// stack, which about an environment, and which names each needs), called by the engine. They
// bound every string and list, refuse control, zero-width and text-direction characters and
// path-like names, and keep every error short (Quote, FieldErrorsMax).
//
// It depends on nothing else in this module. The names and string values match the Pulumi
// Service provider's schema and the Pulumi Cloud webhook API exactly, so values read from a
// Pulumi program, a REST request or the store can be compared without translation.
package webhook
