package engine

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// newID returns the ID of a new event, delivery or deployment request: a UUID (the shape of
// Pulumi Cloud's delivery IDs) whose first bits are the time (store.NewID, version 7). IDs
// made one after another sort together, so each index keyed by one (the deliveries' and
// events' own, deliveries by event, attempts by delivery) grows at its end instead of
// rewriting a random page of the index for every row.
func newID() string { return store.NewID() }

// workerName identifies one engine's claims in the store: host, process and a random suffix,
// so two engines in one process never share claims.
func workerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
