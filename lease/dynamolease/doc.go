// Package dynamolease stores leases in a DynamoDB table in exactly the format
// the Java Kinesis Client Library (KCL 2.x and 3.x) uses, so a Java KCL fleet
// can switch to kcl in place, on the same table, without migrating data.
//
// # Using it
//
// Build a *dynamodb.Client (the library never loads AWS configuration), pass
// it to New with the table name (KCL names the table after the application),
// and call EnsureTable once at start-up. New validates and starts nothing;
// EnsureTable creates the table when it is missing and waits until it is
// ACTIVE. A Store is safe for concurrent use.
//
// # Table and items
//
// The table's hash key is leaseKey (S). A new table is created on-demand
// (PAY_PER_REQUEST) unless WithProvisioned says otherwise, and with KCL 3.x's
// global secondary index LeaseOwnerToLeaseKeyIndex (hash key leaseOwner, range
// key leaseKey, keys only) unless WithOwnerIndex(false). Each item holds one
// lease with KCL's attribute names and types; MarshalItem and UnmarshalItem
// document them and what is tolerated. KCL 3.5's single table format also
// keeps worker metrics and coordinator state rows in the lease table, told
// apart by entityType: they are not leases, List skips them and Get reports
// them as lease.ErrNotFound (and ErrNotLease).
//
// # Writes
//
// Every write is exactly one conditional request, as package lease specifies:
// Create is a PutItem conditioned on attribute_not_exists(leaseKey), so an
// existing item — even one that cannot be read — is never overwritten; Renew,
// Take, Handoff, Checkpoint and Release are UpdateItems conditioned on
// leaseCounter (and leaseOwner where the method says so) that SET and REMOVE
// only the attributes they own, so attributes written by other KCL versions
// survive; all but Handoff increment leaseCounter (KCL 3.x's handoff request
// leaves it alone, and so does this one, so that Java holders complete it);
// Delete is a DeleteItem conditioned on leaseCounter. Updates return
// the stored lease (ReturnValues ALL_NEW) and, when their condition fails, the
// stored item (ReturnValuesOnConditionCheckFailure ALL_OLD), which the error
// then describes.
//
// A write whose condition fails after the SDK retried it may have been
// applied by an earlier attempt whose response was lost. KCL treats such a
// renewal as successful when the lease, re-read, is still owned by the renewer
// with the counter one higher. A Store does the same for every update, but
// only when the SDK did retry the request: without a retry, a stored counter
// one above the caller's is a genuine conflict (a stale lease), never a lost
// response.
//
// # Errors
//
// Condition failures match lease.ErrConflict (and lease.ErrLeaseLost for the
// holder's writes, lease.ErrAlreadyExists for Create; lease.ErrNotFound too
// when the lease no longer exists). Throttling that outlasted the SDK's retries
// matches lease.ErrThrottled; a missing table matches ErrTableNotFound; a
// cancelled context matches context.Canceled. Items that cannot be read as
// leases are reported as *lease.ItemError, by List in a *lease.MalformedError
// alongside the well-formed leases. The SDK's error stays in every chain.
//
// # Cost
//
// Stats reports the capacity DynamoDB says each call consumed. On DynamoDB
// Local, with lease items of about 300 bytes: Create, Renew, Checkpoint and
// Delete cost 1 write unit; Take and Release 2 (the owner index is written
// too); a consistent Get 1 read unit; a consistent List about one read unit per
// 14 leases (7 for 100 leases).
//
// # kcl-fleet items
//
// A Store is also a lease.FleetStore. Its items live in the lease table under
// keys no lease has (kcl#leader, kcl#roster, kcl#worker#<id>), each with an
// entityType of its own (KCL_FLEET_LEADER, KCL_FLEET_ROSTER,
// KCL_FLEET_HEARTBEAT) and no leaseOwner, so List, Get and ListOwned never
// return them; fleet.go documents their attributes. Every write is one
// UpdateItem conditioned on the item being of its kind, so a fleet write never
// changes a lease. On DynamoDB Local: Beat, MarkAssigned and each leader-lock
// write cost 1 write unit; Assign 2 (3 when the lease had an owner: the
// owner index is written twice); Heartbeats half a read unit per heartbeat
// found; Leader and Roster 1 read unit (a roster of 100 36-byte ids is 4
// KB, so Join and Leave then cost 4 write units). A roster is one item, at
// most 400 KB: about 10,000 ids of 36 bytes.
//
// A Store is also a lease.Surveyor: Survey tells a Worker at start whether
// the table holds kcl-fleet items, Java KCL 3.x coordination rows, or both,
// and whether KCL 3.0–3.4's WorkerMetricStats and CoordinatorState tables
// exist beside it (see WithKCL3Tables), so that it can choose its
// coordination mode.
package dynamolease
