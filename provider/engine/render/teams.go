package render

import "github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"

// A Microsoft Teams workflow message: a message activity whose one attachment is an Adaptive
// Card (https://adaptivecards.io/explorer/), which the "post to a channel when a webhook
// request is received" workflow posts as is.
type teamsBody struct {
	Type        string            `json:"type"`
	Attachments []teamsAttachment `json:"attachments"`
}

type teamsAttachment struct {
	ContentType string    `json:"contentType"`
	ContentURL  *string   `json:"contentUrl"`
	Content     teamsCard `json:"content"`
}

type teamsCard struct {
	Schema       string         `json:"$schema"`
	Type         string         `json:"type"`
	Version      string         `json:"version"`
	FallbackText string         `json:"fallbackText"`
	Body         []teamsElement `json:"body"`
	Actions      []teamsAction  `json:"actions,omitempty"`
	MSTeams      teamsOptions   `json:"msteams"`
}

type teamsElement struct {
	Type     string      `json:"type"` // TextBlock | FactSet
	Text     string      `json:"text,omitempty"`
	Size     string      `json:"size,omitempty"`
	Weight   string      `json:"weight,omitempty"`
	Color    string      `json:"color,omitempty"`
	IsSubtle bool        `json:"isSubtle,omitempty"`
	Spacing  string      `json:"spacing,omitempty"`
	Wrap     bool        `json:"wrap,omitempty"`
	Facts    []teamsFact `json:"facts,omitempty"`
}

type teamsFact struct {
	Title string `json:"title"`
	Value string `json:"value"`
}

type teamsAction struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

type teamsOptions struct {
	Width string `json:"width"`
}

// Adaptive Card constants.
const (
	teamsContentType   = "application/vnd.microsoft.card.adaptive"
	teamsSchema        = "http://adaptivecards.io/schemas/adaptive-card.json"
	teamsCardVersion   = "1.4"
	teamsActionOpenURL = "Action.OpenUrl"
)

func teamsColor(t tone) string {
	switch t {
	case toneGood:
		return "Good"
	case toneBad:
		return "Attention"
	case toneWarn:
		return "Warning"
	case toneProgress:
		return "Accent"
	default:
		return "Default"
	}
}

func teamsMessage(s summary) teamsBody {
	body := []teamsElement{
		{Type: "TextBlock", Text: s.title, Size: "Large", Weight: "Bolder", Color: teamsColor(s.tone), Wrap: true},
		{Type: "TextBlock", Text: s.subjectLabel + ": " + s.subject, IsSubtle: true, Spacing: "None", Wrap: true},
	}
	if len(s.facts) > 0 {
		facts := make([]teamsFact, len(s.facts))
		for i, f := range s.facts {
			facts[i] = teamsFact{Title: f.label, Value: f.value}
		}
		body = append(body, teamsElement{Type: "FactSet", Facts: facts})
	}
	body = append(body, teamsElement{Type: "TextBlock", Text: "Sent by " + webhook.SystemUserName, Size: "Small", IsSubtle: true, Wrap: true})
	var actions []teamsAction
	if s.link != "" {
		actions = []teamsAction{{Type: teamsActionOpenURL, Title: s.linkText, URL: s.link}}
	}
	return teamsBody{
		Type: "message",
		Attachments: []teamsAttachment{{
			ContentType: teamsContentType,
			Content: teamsCard{
				Schema: teamsSchema, Type: "AdaptiveCard", Version: teamsCardVersion,
				FallbackText: s.title + ": " + s.subjectLabel + " " + s.subject,
				Body:         body, Actions: actions, MSTeams: teamsOptions{Width: "Full"},
			},
		}},
	}
}
