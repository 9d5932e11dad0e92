package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/refdocs"
)

// OpenAPI validates requests and responses against the Pulumi Cloud webhook API document,
// tightened so that responses may carry only the documented fields (the document allows extra
// ones): a misspelt field such as environmentName for envName, or a secret, fails.
type OpenAPI struct {
	doc    *openapi3.T
	router routers.Router
}

var (
	openAPIOnce sync.Once
	openAPIDoc  *OpenAPI
	openAPIErr  error
)

// LoadOpenAPI loads the Pulumi Cloud webhook API document from the reference facts in the
// repository (package refdocs), and fails t clearly when they do not load.
func LoadOpenAPI(t testing.TB) *OpenAPI {
	t.Helper()
	openAPIOnce.Do(func() { openAPIDoc, openAPIErr = loadOpenAPI() })
	if openAPIErr != nil {
		t.Fatalf("the API contract tests need the OpenAPI reference facts (%s): %v", refdocs.OpenAPI, openAPIErr)
	}
	return openAPIDoc
}

func loadOpenAPI() (*OpenAPI, error) {
	data, err := refdocs.Read(refdocs.OpenAPI)
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(data)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	if err := tighten(doc); err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &OpenAPI{doc: doc, router: router}, nil
}

// tighten forbids undocumented response fields: WebhookResponse becomes one flat object of
// Webhook's fields (minus the write-only secret) and its own, and WebhookDelivery is closed.
func tighten(doc *openapi3.T) error {
	schemas := doc.Components.Schemas
	hook, resp, delivery := schemas["Webhook"], schemas["WebhookResponse"], schemas["WebhookDelivery"]
	if hook == nil || resp == nil || delivery == nil || len(resp.Value.AllOf) != 2 {
		return errors.New("the document no longer has the Webhook, WebhookResponse and WebhookDelivery schemas this test knows")
	}
	no := false
	flat := openapi3.NewObjectSchema()
	flat.Properties = openapi3.Schemas{}
	for _, part := range resp.Value.AllOf {
		for name, p := range part.Value.Properties {
			if name != "secret" {
				flat.Properties[name] = p
			}
		}
		flat.Required = append(flat.Required, part.Value.Required...)
	}
	flat.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
	*resp.Value = *flat
	delivery.Value.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
	return nil
}

// Our additions to the documented operations, each listed here so that no other difference
// passes unnoticed: a request of a documented operation may carry only the documented query
// parameters and those below, and a 2xx answer only the headers below beside the documented
// ones. The listings page (?limit=, ?continuationToken=, and the delivery log's older
// ?before=), naming the next page in X-Continuation-Token and a Link rel="next" (and, for
// the delivery log, X-Next-Before); a create answers Location.
var (
	pagingQuery       = []string{"limit", "continuationToken"}
	pagingHeaders     = []string{"X-Continuation-Token", "Link"}
	deliveryQuery     = append(slices.Clone(pagingQuery), "before")
	deliveryHeaders   = append(slices.Clone(pagingHeaders), "X-Next-Before")
	extraQuery        = map[string][]string{}
	extraHeaders      = map[string][]string{}
	responseHeaderAll = []string{"Content-Type", "Content-Length", "Date", "Cache-Control"}
)

func init() {
	for _, scope := range []string{
		"/api/orgs/{orgName}",
		"/api/stacks/{orgName}/{projectName}/{stackName}",
		"/api/esc/environments/{orgName}/{projectName}/{envName}",
	} {
		extraQuery["GET "+scope+"/hooks"] = pagingQuery
		extraHeaders["GET "+scope+"/hooks"] = pagingHeaders
		extraHeaders["POST "+scope+"/hooks"] = []string{"Location"}
		extraQuery["GET "+scope+"/hooks/{hookName}/deliveries"] = deliveryQuery
		extraHeaders["GET "+scope+"/hooks/{hookName}/deliveries"] = deliveryHeaders
	}
}

// checkExtras fails t for a query parameter or a 2xx response header of a documented
// operation that is neither documented nor one of our listed additions.
func checkExtras(t testing.TB, route *routers.Route, req *http.Request, status int, header http.Header) {
	t.Helper()
	op := route.Method + " " + route.Path
	for name := range req.URL.Query() {
		if route.Operation.Parameters.GetByInAndName("query", name) == nil && !slices.Contains(extraQuery[op], name) {
			t.Errorf("%s %s: query parameter %q is neither in the OpenAPI document nor one of our listed additions", req.Method, req.URL.Path, name)
		}
	}
	if status >= 300 {
		return
	}
	var documented openapi3.Headers
	if r := route.Operation.Responses.Status(status); r != nil && r.Value != nil {
		documented = r.Value.Headers
	}
	for name := range header {
		name = http.CanonicalHeaderKey(name)
		if _, ok := documented[name]; ok || slices.Contains(responseHeaderAll, name) || slices.Contains(extraHeaders[op], name) {
			continue
		}
		t.Errorf("%s %s: the %d answer's header %q is neither in the OpenAPI document nor one of our listed additions", req.Method, req.URL.Path, status, name)
	}
}

// Documented reports whether the document has the operation of req.
func (o *OpenAPI) Documented(req *http.Request) bool {
	_, _, err := o.router.FindRoute(req)
	return err == nil
}

// Check validates one exchange. A request of a documented operation that succeeded must be
// valid; its response must be documented (status and body). Any error response, documented
// or not, must be the {"code": N, "message": "..."} body with N equal to the status.
func (o *OpenAPI) Check(t testing.TB, req *http.Request, reqBody []byte, status int, header http.Header, body []byte) {
	t.Helper()
	if status >= 400 {
		CheckErrorBody(t, status, header, body)
	}
	route, params, err := o.router.FindRoute(req)
	if err != nil {
		return // not a documented operation (events, probes, metrics)
	}
	checkExtras(t, route, req, status, header)
	ctx := context.Background()
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
	}
	// PATCH bodies may be partial, our extension (the document's Webhook schema requires
	// every field); the other requests that succeed must be valid as documented.
	if status < 300 && req.Method != http.MethodPatch {
		r2 := req.Clone(ctx)
		r2.Body = io.NopCloser(bytes.NewReader(reqBody))
		in.Request = r2
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			t.Errorf("%s %s: the request does not match the OpenAPI document: %v", req.Method, req.URL.Path, err)
		}
	}
	documented := route.Operation.Responses.Status(status) != nil
	if status < 400 || documented {
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: header,
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		}
		out.SetBodyBytes(body)
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: the %d response does not match the OpenAPI document: %v\nbody: %s", req.Method, req.URL.Path, status, err, body)
		}
	}
}

// CheckErrorBody checks the shape of an error response.
func CheckErrorBody(t testing.TB, status int, header http.Header, body []byte) {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error response %d has Content-Type %q, want application/json", status, ct)
	}
	var e map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("error response %d is not JSON: %v: %s", status, err, body)
		return
	}
	code, _ := e["code"].(float64)
	msg, _ := e["message"].(string)
	if int(code) != status || msg == "" {
		t.Errorf("error response %d is %s, want {\"code\": %d, \"message\": \"...\"}", status, body, status)
	}
	for k := range e {
		if !slices.Contains([]string{"code", "message", "errors"}, k) {
			t.Errorf("error response %d has unexpected field %q: %s", status, k, body)
		}
	}
}
