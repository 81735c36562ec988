package dynamolease

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// KCL 3.x records two migrations in coordinator state rows: the client
// version of the 2.x -> 3.x migration ("Migration3.0") and the 3.4 -> 3.5
// single table migration ("TableMigration3.5"). kcl only reads them: it must
// recognise them and, in KCL-compatible mode, never stand in a migration's
// way.

// Hash key values and attribute names of the migration rows
// (coordinator/migration/MigrationState, TableMigrationState).
const (
	clientVersionKey     = "Migration3.0"
	tableMigrationKey    = "TableMigration3.5"
	attrClientVersion    = "cv"  // S, ClientVersion enum name
	attrTableMigration   = "tm"  // S, TableMigrationStatus enum name
	attrModifiedBy       = "mb"  // S, worker id
	attrModifiedAt       = "mts" // N, epoch MILLISECONDS
	attrMigrationHistory = "h"   // L of M {cv|tm, mb, mts}, newest first
)

// clientVersion is KCL 3.x's ClientVersion: where a 2.x -> 3.x migration
// stands.
type clientVersion int

const (
	clientVersionInit           clientVersion = iota + 1 // CLIENT_VERSION_INIT
	clientVersionUpgradeFrom2x                           // CLIENT_VERSION_UPGRADE_FROM_2X
	clientVersion2x                                      // CLIENT_VERSION_2X
	clientVersion3xWithRollback                          // CLIENT_VERSION_3X_WITH_ROLLBACK
	clientVersion3x                                      // CLIENT_VERSION_3X
)

// clientVersionStrings holds the Java enum names, indexed by clientVersion.
var clientVersionStrings = [...]string{
	clientVersionInit:           "CLIENT_VERSION_INIT",
	clientVersionUpgradeFrom2x:  "CLIENT_VERSION_UPGRADE_FROM_2X",
	clientVersion2x:             "CLIENT_VERSION_2X",
	clientVersion3xWithRollback: "CLIENT_VERSION_3X_WITH_ROLLBACK",
	clientVersion3x:             "CLIENT_VERSION_3X",
}

var clientVersionNames = enumNames[clientVersion](clientVersionStrings[:])

// String returns the Java enum name.
func (v clientVersion) String() string {
	if v > 0 && int(v) < len(clientVersionStrings) {
		return clientVersionStrings[v]
	}
	return fmt.Sprintf("clientVersion(%d)", int(v))
}

// tableMigrationStatus is KCL 3.5's TableMigrationStatus: where the move of
// coordinator state and worker metrics into the lease table stands.
type tableMigrationStatus int

const (
	tableMigrationInit     tableMigrationStatus = iota + 1 // TABLE_MIGRATION_STATUS_INIT
	tableMigrationDeployed                                 // TABLE_MIGRATION_STATUS_DEPLOYED
	tableMigrationPending                                  // TABLE_MIGRATION_STATUS_PENDING
	tableMigrationComplete                                 // TABLE_MIGRATION_STATUS_COMPLETE
)

// tableMigrationStrings holds the Java enum names, indexed by
// tableMigrationStatus: the statuses KCL stores (its local-only UNKNOWN is
// never written).
var tableMigrationStrings = [...]string{
	tableMigrationInit:     "TABLE_MIGRATION_STATUS_INIT",
	tableMigrationDeployed: "TABLE_MIGRATION_STATUS_DEPLOYED",
	tableMigrationPending:  "TABLE_MIGRATION_STATUS_PENDING",
	tableMigrationComplete: "TABLE_MIGRATION_STATUS_COMPLETE",
}

var tableMigrationNames = enumNames[tableMigrationStatus](tableMigrationStrings[:])

// String returns the Java enum name.
func (s tableMigrationStatus) String() string {
	if s > 0 && int(s) < len(tableMigrationStrings) {
		return tableMigrationStrings[s]
	}
	return fmt.Sprintf("tableMigrationStatus(%d)", int(s))
}

// enumNames maps the names of an iota+1 enum (indexed by value) to values.
func enumNames[E ~int](names []string) map[string]E {
	m := make(map[string]E, len(names))
	for i, name := range names {
		if name != "" {
			m[name] = E(i)
		}
	}
	return m
}

// migrationChange is one state of a migration row: the state, which worker
// wrote it and when (milliseconds).
type migrationChange[S any] struct {
	state S
	by    string
	at    time.Time
}

// clientVersionState is the "Migration3.0" row.
type clientVersionState struct {
	// entityType is "CLIENT_VERSION_MIGRATION" on rows KCL 3.5 created or
	// moved to the lease table, "" on rows from KCL 3.0–3.4.
	entityType string
	migrationChange[clientVersion]
	// history holds the previous states, newest first (at most 10).
	history []migrationChange[clientVersion]
}

// tableMigrationState is the "TableMigration3.5" row.
type tableMigrationState struct {
	entityType string // "TABLE_MIGRATION"; KCL 3.5 always writes it
	migrationChange[tableMigrationStatus]
	history []migrationChange[tableMigrationStatus] // newest first
}

// decodeClientVersionState reads the "Migration3.0" row of table t.
//
// Required: the hash key (= "Migration3.0"), cv (a known ClientVersion), mb
// and mts. Optional: entityType (S "CLIENT_VERSION_MIGRATION") and h, whose
// entries need cv, mb and mts too. A malformed row yields a
// *coordinationItemError (matching lease.ErrMalformed).
func decodeClientVersionState(t kcl3Table, item map[string]types.AttributeValue) (clientVersionState, error) {
	d := newCoordinationDecoder("client version", item)
	var s clientVersionState
	d.migrationKey(t.hashKey, clientVersionKey)
	s.entityType = d.entityType(entityTypeClientVersion)
	s.migrationChange = migrationFields(d, "", item, attrClientVersion, clientVersionNames)
	s.history = migrationHistory(d, attrClientVersion, clientVersionNames)
	if err := d.result(); err != nil {
		return clientVersionState{}, err
	}
	return s, nil
}

// decodeTableMigrationState reads the "TableMigration3.5" row of table t.
//
// Required: the hash key (= "TableMigration3.5"), tm (a stored
// TableMigrationStatus), mb and mts. Optional: entityType (S
// "TABLE_MIGRATION") and h, whose entries need tm, mb and mts too. A
// malformed row yields a *coordinationItemError (matching
// lease.ErrMalformed).
func decodeTableMigrationState(t kcl3Table, item map[string]types.AttributeValue) (tableMigrationState, error) {
	d := newCoordinationDecoder("table migration", item)
	var s tableMigrationState
	d.migrationKey(t.hashKey, tableMigrationKey)
	s.entityType = d.entityType(entityTypeTableMigration)
	s.migrationChange = migrationFields(d, "", item, attrTableMigration, tableMigrationNames)
	s.history = migrationHistory(d, attrTableMigration, tableMigrationNames)
	if err := d.result(); err != nil {
		return tableMigrationState{}, err
	}
	return s, nil
}

func (d *coordinationDecoder) migrationKey(hashKey, want string) {
	if k := d.hashKey(hashKey); k != "" && k != want {
		d.fail(hashKey, fmt.Sprintf("%q, want %q", truncate(k), want), nil)
	}
}

// migrationFields reads the state attribute stateAttr (one of names), mb and
// mts from item, an attribute map of the row or of one of its history
// entries (then prefix names the entry in errors, e.g. "h[2].").
func migrationFields[S any](d *coordinationDecoder, prefix string, item map[string]types.AttributeValue, stateAttr string, names map[string]S) migrationChange[S] {
	sub := coordinationDecoder{decoder: decoder{item: item, key: d.key}, kind: d.kind}
	var c migrationChange[S]
	if name := sub.requiredStr(stateAttr); name != "" {
		if st, ok := names[name]; ok {
			c.state = st
		} else {
			sub.fail(stateAttr, fmt.Sprintf("unknown value %q", truncate(name)), nil)
		}
	}
	c.by = sub.requiredStr(attrModifiedBy)
	if ms, ok := sub.integer(attrModifiedAt, true); ok {
		c.at = time.UnixMilli(ms)
	}
	if sub.err != nil && d.err == nil {
		sub.err.Attribute = prefix + sub.err.Attribute
		d.err = sub.err
	}
	return c
}

// migrationHistory reads the optional h attribute: a list of maps, each a
// previous state.
func migrationHistory[S any](d *coordinationDecoder, stateAttr string, names map[string]S) []migrationChange[S] {
	l, ok := member[types.AttributeValueMemberL](&d.decoder, attrMigrationHistory, "L")
	if !ok {
		return nil
	}
	out := make([]migrationChange[S], 0, len(l.Value))
	for i, av := range l.Value {
		prefix := fmt.Sprintf("%s[%d]", attrMigrationHistory, i)
		m, ok := av.(*types.AttributeValueMemberM)
		if !ok || m == nil {
			d.fail(prefix, fmt.Sprintf("want type M, have %s", typeName(av)), nil)
			return nil
		}
		c := migrationFields(d, prefix+".", m.Value, stateAttr, names)
		if d.err != nil {
			return nil
		}
		out = append(out, c)
	}
	return out
}
