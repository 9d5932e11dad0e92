package store

import (
	"errors"
	"slices"
	"testing"
)

func TestTransferBatcherSizesAndKeepsEventsTogether(t *testing.T) {
	var got [][]string
	b := NewTransferBatcher(TransferExportParams{BatchSize: 2}, func(tb *TransferBatch) error {
		var ids []string
		for _, e := range tb.Events {
			ids = append(ids, e.ID)
		}
		for _, d := range tb.Deliveries {
			ids = append(ids, d.ID)
		}
		got = append(got, ids)
		return nil
	})
	recs := []*TransferBatch{
		{Events: []*Event{{ID: "e1"}}},
		{Events: []*Event{{ID: "e2"}}},
		{Deliveries: []*Delivery{{ID: "d1", EventID: "e1"}}},
		{Deliveries: []*Delivery{{ID: "d2", EventID: "e1"}}},
		{Deliveries: []*Delivery{{ID: "d3", EventID: "e1"}}}, // same event: stays with d2
		{Deliveries: []*Delivery{{ID: "d4", EventID: "e2"}}},
	}
	for _, r := range recs {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"e1", "e2"}, {"d1", "d2", "d3"}, {"d4"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
}

func TestTransferBatcherDefaultsEmptyAndErrors(t *testing.T) {
	calls := 0
	b := NewTransferBatcher(TransferExportParams{}, func(*TransferBatch) error { calls++; return nil })
	for i := 0; i < TransferBatchSizeDefault; i++ {
		if err := b.Add(&TransferBatch{Tokens: []*Token{{}}}); err != nil {
			t.Fatal(err)
		}
	}
	if calls != 0 {
		t.Fatalf("a batch went out before %d records", TransferBatchSizeDefault)
	}
	if err := b.Add(&TransferBatch{Tokens: []*Token{{}}}); err != nil || calls != 1 {
		t.Fatalf("record %d: calls %d, %v; want the first batch out", TransferBatchSizeDefault+1, calls, err)
	}

	empty := NewTransferBatcher(TransferExportParams{BatchSize: 3}, func(*TransferBatch) error {
		t.Fatal("fn called for an empty export")
		return nil
	})
	if err := empty.Flush(); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	failing := NewTransferBatcher(TransferExportParams{BatchSize: 1}, func(*TransferBatch) error { return boom })
	if err := failing.Add(&TransferBatch{Tokens: []*Token{{}}}); err != nil {
		t.Fatal(err)
	}
	if err := failing.Add(&TransferBatch{Tokens: []*Token{{}}}); !errors.Is(err, boom) {
		t.Fatalf("fn's error: got %v", err)
	}
	if err := failing.Flush(); !errors.Is(err, boom) {
		t.Fatalf("fn's error on Flush: got %v", err)
	}
}

func TestTransferTablesFollowExportOrder(t *testing.T) {
	var c TransferCounts
	for i, tt := range TransferTables {
		*tt.Count(&c) = i + 1
	}
	list := c.List()
	if len(list) != len(TransferTables) {
		t.Fatalf("%d tables, %d kinds", len(TransferTables), len(list))
	}
	for i, k := range list {
		if k.N != i+1 {
			t.Fatalf("kind %s is #%d in List but table %s is #%d", k.Kind, i+1, TransferTables[k.N-1].Table, k.N)
		}
	}
}
