package dynamolease

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kclgo/kcl/lease"
)

var _ lease.Surveyor = (*Store)(nil)

// entityTypeStream is the entityType of KCL 3.5's stream info rows (written
// only with streamInfoMode TRACK_ONLY).
const entityTypeStream = "STREAM"

// fleetEntityTypePrefix starts the entityType of every kcl-fleet item, those
// of newer kcl versions included.
const fleetEntityTypePrefix = "KCL_FLEET_"

// surveyAttrs are the attributes Survey reads of each item: the key and
// entityType tell the items apart; ownerName, recordVersionNumber, cv and tm
// recognise KCL's coordination rows that have no entityType and describe the
// others.
var surveyAttrs = []string{
	attrLeaseKey, attrEntityType, attrOwnerName, attrRecordVersionNumber, attrClientVersion, attrTableMigration,
}

// Survey implements lease.Surveyor: it tells what the lease table holds
// besides leases, for a Worker that chooses its coordination mode at start.
// It reads the table once, with a paginated, eventually consistent Scan that
// projects only the attributes in surveyAttrs, then describes the tables KCL
// 3.0–3.4 keep beside the lease table (see WithKCL3Tables). It blocks until
// it is done or ctx ends.
//
// Survey.Fleet is set by any kcl-fleet item (entityType KCL_FLEET_HEARTBEAT,
// KCL_FLEET_ROSTER, KCL_FLEET_LEADER, or another KCL_FLEET_ type of a newer
// kcl). Survey.Java lists, one description each:
//
//   - the KCL 3.x rows of the lease table, told apart by entityType as KCL
//     3.5 does: the leader lock (LEADER), WorkerMetricStats rows
//     (WORKER_METRIC_STATS), the client version and table migration states
//     (CLIENT_VERSION_MIGRATION, TABLE_MIGRATION) and stream info rows
//     (STREAM); and rows without entityType under KCL's own keys ("Leader"
//     with a recordVersionNumber, "Migration3.0" with cv, "TableMigration3.5"
//     with tm);
//   - rows of any other entityType but LEASE: no kcl writes them, so a newer
//     Java KCL did, and counting them errs towards KCL-compatible
//     coordination, the mode that is safe beside Java workers;
//   - then the WorkerMetricStats and CoordinatorState tables, when they
//     exist: a Java KCL 3.0–3.4 fleet created them, and KCL 3.5 uses them
//     until its table migration completes (and never deletes them).
//
// Leases never count, whichever KCL wrote them: a Java KCL 2.x fleet, which
// keeps nothing but leases, goes unseen. Items are recognised, not decoded:
// a malformed item counts by its entityType, or not at all when that is not a
// string, and is never an error. Survey stops reading once it has found both
// a kcl-fleet item and a Java one, so Java may then be incomplete.
//
// A missing lease table fails with an error matching ErrTableNotFound.
// DynamoDB errors of the other tables but ResourceNotFoundException (such as
// AccessDeniedException, for credentials limited to the lease table) fail
// too, naming the table: WithKCL3Tables can skip it.
//
// Cost: an eventually consistent Scan is billed for the whole items it reads
// (the projection saves transfer, not read units), so half what List costs,
// and two DescribeTable calls.
func (s *Store) Survey(ctx context.Context) (lease.Survey, error) {
	if err := ctx.Err(); err != nil {
		return lease.Survey{}, fmt.Errorf("dynamolease: survey of %s: %w", s.table, err)
	}
	fleet, java, err := s.surveyLeaseTable(ctx)
	if err != nil {
		return lease.Survey{}, fmt.Errorf("dynamolease: survey of %s: %w", s.table, err)
	}
	slices.Sort(java)
	if !fleet || len(java) == 0 {
		for _, t := range s.separateTables() {
			found, err := s.tableExists(ctx, t.name)
			if err != nil {
				return lease.Survey{}, fmt.Errorf("dynamolease: survey of %s: describe %s table %s (WithKCL3Tables can skip it): %w",
					s.table, t.kind, t.name, err)
			}
			if found {
				java = append(java, t.kind+" table "+t.name)
			}
		}
	}
	return lease.Survey{Fleet: fleet, Java: java}, nil
}

// surveyLeaseTable scans the lease table for kcl-fleet and Java KCL items,
// until both are found or the table is read.
func (s *Store) surveyLeaseTable(ctx context.Context) (fleet bool, java []string, err error) {
	e := newExpr()
	projection := make([]string, len(surveyAttrs))
	for i, attr := range surveyAttrs {
		projection[i] = e.n(attr)
	}
	in := &dynamodb.ScanInput{
		TableName:                aws.String(s.table),
		ProjectionExpression:     aws.String(strings.Join(projection, ", ")),
		ExpressionAttributeNames: e.names,
		ConsistentRead:           aws.Bool(false),
		ReturnConsumedCapacity:   types.ReturnConsumedCapacityTotal,
	}
	if s.opts.pageSize > 0 {
		in.Limit = aws.Int32(s.opts.pageSize)
	}
	for {
		out, err := s.client.Scan(ctx, in)
		err = s.noted(opScan, consumed(out, err), err, nil)
		if err != nil {
			return false, nil, err
		}
		for _, item := range out.Items {
			switch kind, desc := surveyItem(item); kind {
			case itemFleet:
				fleet = true
			case itemJava:
				java = append(java, desc)
			}
		}
		if fleet && len(java) > 0 || len(out.LastEvaluatedKey) == 0 {
			return fleet, java, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// itemKind is what Survey makes of an item of the lease table.
type itemKind int

const (
	itemOther itemKind = iota + 1 // a lease, or an item without a string entityType
	itemFleet                     // a kcl-fleet item
	itemJava                      // a Java KCL 3.x coordination row
)

// surveyItem tells what item (read with surveyAttrs) is and, for a Java
// row, describes it. It never fails: attributes missing or of another type
// read as absent.
func surveyItem(item map[string]types.AttributeValue) (itemKind, string) {
	key, _ := stringAttr(item, attrLeaseKey)
	et, ok := stringAttr(item, attrEntityType)
	if !ok && item[attrEntityType] != nil {
		return itemOther, "" // an entityType that is not a string: unreadable
	}
	_, hasRVN := stringAttr(item, attrRecordVersionNumber)
	cv, hasCV := stringAttr(item, attrClientVersion)
	tm, hasTM := stringAttr(item, attrTableMigration)
	switch {
	case et == entityTypeLeader, et == "" && key == leaderLockKey && hasRVN:
		owner, _ := stringAttr(item, attrOwnerName)
		return itemJava, fmt.Sprintf("leader lock of %q", truncate(owner))
	case et == entityTypeClientVersion, et == "" && key == clientVersionKey && hasCV:
		return itemJava, fmt.Sprintf("client version item %q (%s)", truncate(key), truncate(cv))
	case et == entityTypeTableMigration, et == "" && key == tableMigrationKey && hasTM:
		return itemJava, fmt.Sprintf("table migration item %q (%s)", truncate(key), truncate(tm))
	case et == "", et == entityTypeLease:
		return itemOther, ""
	case et == entityTypeWorkerMetrics:
		return itemJava, fmt.Sprintf("WorkerMetricStats row of %q", truncate(key))
	case et == entityTypeStream:
		return itemJava, fmt.Sprintf("stream info row %q", truncate(key))
	case strings.HasPrefix(et, fleetEntityTypePrefix):
		return itemFleet, ""
	default:
		return itemJava, fmt.Sprintf("item %q of entityType %q", truncate(key), truncate(et))
	}
}

// stringAttr returns the value of attribute attr when it is an S.
func stringAttr(item map[string]types.AttributeValue, attr string) (string, bool) {
	if s, ok := item[attr].(*types.AttributeValueMemberS); ok && s != nil {
		return s.Value, true
	}
	return "", false
}

// separateTable is a table of KCL 3.0–3.4 that Survey looks for.
type separateTable struct {
	kind string // "WorkerMetricStats" or "CoordinatorState"
	name string
}

// separateTables returns the tables Survey looks for: those WithKCL3Tables
// named, or those KCL would name after an application named like the lease
// table (leaving out a name too long to be a table's).
func (s *Store) separateTables() []separateTable {
	wms, cs := s.opts.workerMetricsTable, s.opts.coordStateTable
	if !s.opts.kcl3Tables {
		wms, cs = workerMetricStatsTable(s.table).name, coordinatorStateTable(s.table).name
	}
	var out []separateTable
	for _, t := range []separateTable{{"WorkerMetricStats", wms}, {"CoordinatorState", cs}} {
		if t.name != "" && checkTableName(t.name) == "" {
			out = append(out, t)
		}
	}
	return out
}

// tableExists describes table name: false when DynamoDB says
// ResourceNotFoundException.
func (s *Store) tableExists(ctx context.Context, name string) (bool, error) {
	_, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	err = classify(err, nil)
	s.stats.record(opDescribeTable, nil, err)
	switch {
	case err == nil:
		return true, nil
	case isTableNotFound(err):
		return false, nil
	default:
		return false, err
	}
}
