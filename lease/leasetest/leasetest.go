// Package leasetest checks that a lease.Store behaves as package lease
// documents, the way testing/fstest checks an fs.FS.
//
// Implementers call Run from a test with a function that makes a fresh, empty
// store (for DynamoDB: a new table):
//
//	func TestConformance(t *testing.T) {
//		leasetest.Run(t, func(t *testing.T) lease.Store { return memlease.New() })
//	}
//
// The suite writes through every method of lease.Store and checks the error
// and the exact state afterwards (with Get, and with List where it matters):
// each condition of each conditional write is exercised on both its success
// and its failure side. It also races concurrent writers against the same
// leases and checks that no successful write was lost, and, when the store
// implements lease.OwnerLister, checks ListOwned.
//
// Equality of leases follows the rules a DynamoDB table imposes, which package
// lease allows every store to apply: a nil and an empty slice are the same
// value, and ParentShardIDs and ChildShardIDs are sets (DynamoDB string sets),
// so their order is not kept. Every other field must read back exactly as
// written.
//
// RunFleet checks a store that also implements lease.FleetStore: heartbeats,
// roster, leader lock and assignment, and that its items never show up as
// leases.
//
// Consistency: Get, List and every write must be strongly consistent (a read
// sees every write that returned before it started). Only ListOwned may lag
// writes, as lease.OwnerLister documents; the suite polls it for up to 20
// seconds.
//
// Cost: every subtest asks for a new store (about 65 in all). The suite makes
// about 1,500 requests, of which about 400 are concurrent conditional writes,
// so it runs in seconds against DynamoDB Local.
package leasetest

import (
	"testing"
	"time"

	"github.com/kclgo/kcl/lease"
)

// ownedWait bounds how long the suite waits for ListOwned to reflect writes.
const ownedWait = 20 * time.Second

// test is one subtest: a sentence saying what must hold, and the check.
type test struct {
	name string
	run  func(t *testing.T, s lease.Store)
}

// group gathers the subtests of one operation or property.
type group struct {
	name  string
	tests []test
}

// Run runs the conformance suite against stores made by newStore; each call
// must return a new, empty store (a fresh table). newStore may register
// cleanup with t.Cleanup. Subtests are grouped by operation (Create, Get,
// List, RoundTrip, Isolation, Context, Renew, Take, Handoff, Checkpoint,
// Release, Delete, Concurrency, ListOwned) and named as the sentence they
// check, so one can be run with go test -run.
func Run(t *testing.T, newStore func(t *testing.T) lease.Store) {
	t.Helper()
	groups := []group{
		{"Create", createTests},
		{"Get", getTests},
		{"List", listTests},
		{"RoundTrip", roundTripTests},
		{"Isolation", isolationTests},
		{"Context", contextTests},
		{"Renew", renewTests},
		{"Take", takeTests},
		{"Handoff", handoffTests},
		{"Checkpoint", checkpointTests},
		{"Release", releaseTests},
		{"Delete", deleteTests},
		{"Concurrency", concurrencyTests},
		{"ListOwned", listOwnedTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned nil")
					}
					tc.run(t, s)
				})
			}
		})
	}
}
