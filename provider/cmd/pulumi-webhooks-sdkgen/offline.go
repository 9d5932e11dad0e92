package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// logoPNG answers the C# generator's logo download. The generator fetches the schema's logoUrl
// (or a default Pulumi logo URL) with Go's default HTTP client; no network is reachable here and
// the output must not depend on a remote file, so every SDK is generated with this file.
//
//go:embed logo.png
var logoPNG []byte

// offlineTransport serves GET requests for .png files from logoPNG and refuses every other
// request without touching the network.
type offlineTransport struct{}

func (offlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	if r.Method != http.MethodGet || !strings.HasSuffix(strings.ToLower(r.URL.Path), ".png") {
		return nil, fmt.Errorf("sdkgen runs offline: refusing %s %s (only the logo .png download is answered, from logo.png)", r.Method, r.URL.Redacted())
	}
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"image/png"}, "Content-Length": {strconv.Itoa(len(logoPNG))}},
		Body:          io.NopCloser(bytes.NewReader(logoPNG)),
		ContentLength: int64(len(logoPNG)),
		Request:       r,
	}, nil
}

// transportMu serialises installs of the offline transport (tests generate concurrently).
var transportMu sync.Mutex

// installOfflineTransport points Go's default HTTP client and transport at offlineTransport
// until the returned function restores them.
func installOfflineTransport() (restore func()) {
	transportMu.Lock()
	prevTransport, prevClientTransport := http.DefaultTransport, http.DefaultClient.Transport
	http.DefaultTransport = offlineTransport{}
	http.DefaultClient.Transport = offlineTransport{}
	return func() {
		http.DefaultTransport, http.DefaultClient.Transport = prevTransport, prevClientTransport
		transportMu.Unlock()
	}
}
