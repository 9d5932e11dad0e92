package storetest

import (
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func testDriftSchedules(t *testing.T, b *testBundle) {
	prod := stackScope("acme", "web", "prod")
	s1 := &store.DriftSchedule{Stack: prod, ScheduleCron: "0 * * * *", AutoRemediate: true, NextRunAt: T0.Add(time.Hour), CreatedAt: T0}
	if err := b.st.DriftScheduleCreate(b.ctx, s1); err != nil || s1.ID == "" {
		t.Fatalf("DriftScheduleCreate = %v (id %q)", err, s1.ID)
	}
	if err := b.st.DriftScheduleCreate(b.ctx, &store.DriftSchedule{Stack: prod, NextRunAt: T0}); err == nil {
		t.Fatal("DriftScheduleCreate without a cron succeeded")
	}
	if err := b.st.DriftScheduleCreate(b.ctx, &store.DriftSchedule{Stack: orgScope("acme"), ScheduleCron: "* * * * *"}); err == nil {
		t.Fatal("DriftScheduleCreate without a stack succeeded")
	}
	list, err := b.st.DriftScheduleList(b.ctx, prod)
	if err != nil || len(list) != 1 || list[0].ScheduleCron != "0 * * * *" || !list[0].AutoRemediate || !list[0].NextRunAt.Equal(s1.NextRunAt) {
		t.Fatalf("DriftScheduleList = %+v, %v", list, err)
	}
	if due, err := b.st.DriftScheduleDue(b.ctx, T0); err != nil || len(due) != 0 {
		t.Fatalf("DriftScheduleDue before its time = %d, %v", len(due), err)
	}
	due, err := b.st.DriftScheduleDue(b.ctx, T0.Add(time.Hour))
	if err != nil || len(due) != 1 {
		t.Fatalf("DriftScheduleDue = %d, %v", len(due), err)
	}
	// Only one of two processes advancing the same firing wins.
	adv := store.DriftScheduleAdvanceParams{ID: s1.ID, From: due[0].NextRunAt, To: T0.Add(2 * time.Hour), Now: T0.Add(time.Hour)}
	if ok, err := b.st.DriftScheduleAdvance(b.ctx, adv); err != nil || !ok {
		t.Fatalf("DriftScheduleAdvance = %v, %v", ok, err)
	}
	if ok, err := b.st.DriftScheduleAdvance(b.ctx, adv); err != nil || ok {
		t.Fatalf("DriftScheduleAdvance of the same firing again = %v, %v; want false", ok, err)
	}
	wantErr(t, "DriftScheduleDelete under another stack", b.st.DriftScheduleDelete(b.ctx, stackScope("acme", "web", "qa"), s1.ID), store.ErrNotFound)
	if err := b.st.DriftScheduleDelete(b.ctx, prod, s1.ID); err != nil {
		t.Fatalf("DriftScheduleDelete: %v", err)
	}
	wantErr(t, "DriftScheduleDelete twice", b.st.DriftScheduleDelete(b.ctx, prod, s1.ID), store.ErrNotFound)
}
