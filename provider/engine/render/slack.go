package render

import (
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// A Slack incoming-webhook message: `text` is the notification fallback, `blocks` the layout.
// See https://api.slack.com/reference/block-kit/blocks for the block types used here.
type slackBody struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

type slackBlock struct {
	Type     string        `json:"type"`
	Text     *slackText    `json:"text,omitempty"`
	Fields   []slackText   `json:"fields,omitempty"`
	Elements []slackObject `json:"elements,omitempty"`
}

type slackText struct {
	Type  string `json:"type"` // plain_text | mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// slackObject is a context element (a text object) or an actions element (a button).
type slackObject struct {
	Type string `json:"type"`
	Text any    `json:"text"` // a string for context text, a slackText for a button
	URL  string `json:"url,omitempty"`
}

// Slack's limits on block text.
const (
	slackHeaderMaxRunes = 150
	slackFieldsMax      = 10
	slackFieldMaxRunes  = 2000
)

func slackEmoji(t tone) string {
	switch t {
	case toneGood:
		return "✅"
	case toneBad:
		return "❌"
	case toneWarn:
		return "⚠️"
	case toneProgress:
		return "⏳"
	default:
		return "ℹ️"
	}
}

// slackEscape escapes the three characters Slack's mrkdwn treats as control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func slackMessage(s summary) slackBody {
	heading := slackEmoji(s.tone) + " " + s.title
	subject := slackEscape(s.subject)
	if s.link != "" {
		subject = "<" + s.link + "|" + subject + ">"
	}
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: truncate(heading, slackHeaderMaxRunes), Emoji: true}},
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: "*" + s.subjectLabel + ":* " + subject}},
	}
	for start := 0; start < len(s.facts); start += slackFieldsMax {
		end := min(start+slackFieldsMax, len(s.facts))
		var fields []slackText
		for _, f := range s.facts[start:end] {
			text := "*" + f.label + "*\n" + slackEscape(f.value)
			fields = append(fields, slackText{Type: "mrkdwn", Text: truncate(text, slackFieldMaxRunes)})
		}
		blocks = append(blocks, slackBlock{Type: "section", Fields: fields})
	}
	if s.link != "" {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: []slackObject{{
			Type: "button", Text: slackText{Type: "plain_text", Text: s.linkText}, URL: s.link,
		}}})
	}
	event := "ping"
	if s.filter != webhook.Ping {
		event = string(s.filter)
	}
	blocks = append(blocks, slackBlock{Type: "context", Elements: []slackObject{{
		Type: "mrkdwn", Text: "Event `" + event + "` · sent by " + webhook.SystemUserName,
	}}})
	return slackBody{
		Text:   slackEscape(heading + ": " + s.subjectLabel + " " + s.subject),
		Blocks: blocks,
	}
}
