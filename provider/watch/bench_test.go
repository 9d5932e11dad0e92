package watch

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// BenchmarkHistoryListing compares a poll's history listing of one stack (the window from the
// previous poll less the clock skew to now plus the skew) with listing the whole history, on
// a file backend holding `seen` entries from the past 90 days: the window's cost stays flat as
// the history grows.
func BenchmarkHistoryListing(b *testing.B) {
	for _, seen := range []int{1000, 10000} {
		dir := b.TempDir()
		now := time.Now()
		hdir := filepath.Join(dir, ".pulumi", "history", "web", "dev")
		if err := os.MkdirAll(hdir, 0o755); err != nil {
			b.Fatal(err)
		}
		os.MkdirAll(filepath.Join(dir, ".pulumi", "stacks", "web"), 0o755)
		os.WriteFile(filepath.Join(dir, ".pulumi", "meta.yaml"), []byte("version: 1\n"), 0o644)
		step := 90 * 24 * time.Hour / time.Duration(seen)
		for i := range seen {
			n := now.Add(-time.Duration(seen-i) * step).UnixNano()
			if err := os.WriteFile(filepath.Join(hdir, fmt.Sprintf("dev-%d.history.json", n)), []byte("{}"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		be, err := OpenBackend(b.Context(), "file://"+dir)
		if err != nil {
			b.Fatal(err)
		}
		ref := StackRef{Project: "web", Name: "dev"}
		lo := now.Add(-5*time.Second - ClockSkewDefault).UnixNano()
		hi := now.Add(ClockSkewDefault).UnixNano()
		b.Run(fmt.Sprintf("window/seen=%d", seen), func(b *testing.B) {
			for b.Loop() {
				if _, err := be.History(b.Context(), ref, lo, hi); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(WindowPrefixes(lo, hi))), "listings/op")
		})
		b.Run(fmt.Sprintf("everything/seen=%d", seen), func(b *testing.B) {
			for b.Loop() {
				if _, err := be.History(b.Context(), ref, 0, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		be.Close()
	}
}

// BenchmarkHistoryListingS3 is the same on an S3 server in process: object stores list by
// prefix, so the window takes the same requests however long the history (1,000 keys per
// page when listing everything).
func BenchmarkHistoryListingS3(b *testing.B) {
	for _, seen := range []int{1000, 10000} {
		mem := s3mem.New()
		var requests atomic.Int64
		fake := gofakes3.New(mem).Server()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			fake.ServeHTTP(w, r)
		}))
		if err := mem.CreateBucket("state"); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		step := 90 * 24 * time.Hour / time.Duration(seen)
		for i := range seen {
			n := now.Add(-time.Duration(seen-i) * step).UnixNano()
			key := fmt.Sprintf(".pulumi/history/web/dev/dev-%d.history.json", n)
			if _, err := mem.PutObject("state", key, map[string]string{}, bytes.NewReader([]byte("{}")), 2, nil); err != nil {
				b.Fatal(err)
			}
		}
		be, err := OpenBackend(b.Context(), "s3://state?endpoint="+srv.URL+"&region=us-east-1&use_path_style=true")
		if err != nil {
			b.Fatal(err)
		}
		ref := StackRef{Project: "web", Name: "dev"}
		lo := now.Add(-5*time.Second - ClockSkewDefault).UnixNano()
		hi := now.Add(ClockSkewDefault).UnixNano()
		for name, window := range map[string][2]int64{"window": {lo, hi}, "everything": {0, 0}} {
			b.Run(fmt.Sprintf("%s/seen=%d", name, seen), func(b *testing.B) {
				requests.Store(0)
				for b.Loop() {
					if _, err := be.History(b.Context(), ref, window[0], window[1]); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/op")
			})
		}
		be.Close()
		srv.Close()
	}
}
