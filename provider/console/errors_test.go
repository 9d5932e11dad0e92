package console_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A store that fails is a 500 with a generic message; the details go to the log only.
func TestStoreFailureIs500(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := b.signIn(t, "acme")
	if _, err := b.Store.DB().Exec("DROP TABLE hooks"); err != nil {
		t.Fatalf("break the store: %v", err)
	}
	res := b.do(t, req{path: "/acme", cookie: []*http.Cookie{s.cookie}})
	wantStatus(t, res, http.StatusInternalServerError)
	wantBody(t, res, "internal error: see the server log")
	if strings.Contains(res.body, "hooks") && strings.Contains(res.body, "no such table") {
		t.Error("the page shows the store's error")
	}
}

// A form that cannot be parsed is a 400 saying so, on the sign-in form and on every other.
func TestMalformedFormIs400(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, path := range []string{"/-/signin", "/-/orgs/acme/new-hook"} {
		hr, err := http.NewRequest(http.MethodPost, b.URL+path, strings.NewReader("csrf=%zz"))
		if err != nil {
			t.Fatal(err)
		}
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		hr.Header.Set("Authorization", "token "+b.Tokens["acme"])
		res, err := b.client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "the form could not be read") {
			t.Errorf("%s with a malformed form: %d\n%s", path, res.StatusCode, body)
		}
	}
}
