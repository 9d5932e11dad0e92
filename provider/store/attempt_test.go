package store

import "testing"

func TestAttemptSucceeded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		a    Attempt
		want bool
	}{
		{Attempt{ResponseCode: 200}, true},
		{Attempt{ResponseCode: 204}, true},
		{Attempt{ResponseCode: 299}, true},
		{Attempt{ResponseCode: 199}, false},
		{Attempt{ResponseCode: 300}, false},
		{Attempt{ResponseCode: 500}, false},
		{Attempt{}, false},
		{Attempt{Error: "connection refused"}, false},
		{Attempt{ResponseCode: 200, Error: "response body cut short"}, false},
	} {
		if got := c.a.Succeeded(); got != c.want {
			t.Errorf("Succeeded(code %d, error %q) = %t, want %t", c.a.ResponseCode, c.a.Error, got, c.want)
		}
	}
}
