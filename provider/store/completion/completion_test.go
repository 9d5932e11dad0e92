package completion

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func TestPrepare(t *testing.T) {
	now := time.Unix(100, 0)
	ps := []store.DeliveryCompleteParams{
		{ID: "ok", State: store.DeliveryPending, Now: now, Record: store.Attempt{ResponseCode: 503,
			RequestHeaders: map[string][]string{"A": {"1"}}}},
		{ID: "bad", State: store.DeliveryRunning, Now: now},
		{ID: "done", State: store.DeliverySucceeded, Now: now, Record: store.Attempt{ResponseCode: 200}},
	}
	errs, items, todo := Prepare("sqlite", ps)
	if todo != 2 || len(errs) != 3 || len(items) != 3 {
		t.Fatalf("todo %d, %d errs, %d items", todo, len(errs), len(items))
	}
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("good items failed: %v, %v", errs[0], errs[2])
	}
	if errs[1] == nil || !strings.HasPrefix(errs[1].Error(), `sqlite: complete delivery bad: State "running" is not a result`) {
		t.Fatalf("bad item: %v", errs[1])
	}
	ok := items[0]
	if ok.P != &ps[0] || ok.Now != now.UnixNano() || ok.Next != now.UnixNano() ||
		ok.LastErr != "the endpoint answered HTTP 503" || ok.ReqH != `{"A":["1"]}` || ok.RespH != "{}" {
		t.Fatalf("prepared item %+v", ok)
	}
	if items[1].P != nil {
		t.Fatal("an item that failed its checks is to be written")
	}
	if items[2].Next != 0 || items[2].LastErr != "" {
		t.Fatalf("succeeded item %+v", items[2])
	}

	boom := errors.New("boom")
	Fail(items, errs, boom)
	if errs[0] != boom || errs[2] != boom || errs[1] == boom {
		t.Fatalf("Fail: %v", errs)
	}
}

func TestRefused(t *testing.T) {
	boom := errors.New("boom")
	errs := Refused(3, boom)
	if len(errs) != 3 || errs[0] != boom || errs[2] != boom {
		t.Fatalf("Refused = %v", errs)
	}
	if len(Refused(0, boom)) != 0 {
		t.Fatal("Refused(0) is not empty")
	}
}
