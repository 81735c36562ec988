package dynamolease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/kclgo/kcl/lease"
	"github.com/kclgo/kcl/testkit/testenv"
)

func TestSurveyItemTellsItemsApart(t *testing.T) {
	item := func(kv ...any) map[string]types.AttributeValue {
		m := make(map[string]types.AttributeValue)
		for i := 0; i < len(kv); i += 2 {
			switch v := kv[i+1].(type) {
			case string:
				m[kv[i].(string)] = avS(v)
			case types.AttributeValue:
				m[kv[i].(string)] = v
			case nil:
				m[kv[i].(string)] = nil
			}
		}
		return m
	}
	tests := []struct {
		name string
		item map[string]types.AttributeValue
		kind itemKind
		desc string
	}{
		{"a lease of KCL 3.5 is a lease", item(attrLeaseKey, "shardId-000000000000", attrEntityType, "LEASE"), itemOther, ""},
		{"a lease without entityType is a lease", item(attrLeaseKey, "shardId-000000000000"), itemOther, ""},
		{"a lease keyed Leader without a lock's version is a lease", item(attrLeaseKey, "Leader", attrOwnerName, "w-1"), itemOther, ""},
		{"a lease keyed Migration3.0 without cv is a lease", item(attrLeaseKey, "Migration3.0"), itemOther, ""},
		{"a LEASE keyed Leader with a lock's version is a lease", item(attrLeaseKey, "Leader", attrEntityType, "LEASE", attrRecordVersionNumber, "v"), itemOther, ""},
		{"a heartbeat is a kcl-fleet item", item(attrLeaseKey, "kcl#worker#w1", attrEntityType, entityTypeFleetHeartbeat), itemFleet, ""},
		{"the roster is a kcl-fleet item", item(attrLeaseKey, "kcl#roster", attrEntityType, entityTypeFleetRoster), itemFleet, ""},
		{"the kcl-fleet leader lock is a kcl-fleet item", item(attrLeaseKey, "kcl#leader", attrEntityType, entityTypeFleetLeader, attrOwnerName, "x"), itemFleet, ""},
		{"a kcl-fleet item of a newer kcl is a kcl-fleet item", item(attrLeaseKey, "kcl#future", attrEntityType, "KCL_FLEET_FUTURE"), itemFleet, ""},
		{"KCL's leader lock is Java", item(attrLeaseKey, "Leader", attrEntityType, "LEADER", attrOwnerName, "w-1", attrRecordVersionNumber, "v"),
			itemJava, `leader lock of "w-1"`},
		{"a lock shaped as KCL 3.0-3.4 writes it is Java", item(attrLeaseKey, "Leader", attrOwnerName, "w-1", attrRecordVersionNumber, "v"),
			itemJava, `leader lock of "w-1"`},
		{"a WorkerMetricStats row is Java", item(attrLeaseKey, "w-1", attrEntityType, "WORKER_METRIC_STATS"), itemJava, `WorkerMetricStats row of "w-1"`},
		{"the client version is Java", item(attrLeaseKey, "Migration3.0", attrEntityType, "CLIENT_VERSION_MIGRATION", attrClientVersion, "CLIENT_VERSION_3X"),
			itemJava, `client version item "Migration3.0" (CLIENT_VERSION_3X)`},
		{"the client version without entityType is Java", item(attrLeaseKey, "Migration3.0", attrClientVersion, "CLIENT_VERSION_2X"),
			itemJava, `client version item "Migration3.0" (CLIENT_VERSION_2X)`},
		{"the table migration is Java", item(attrLeaseKey, "TableMigration3.5", attrEntityType, "TABLE_MIGRATION", attrTableMigration, "TABLE_MIGRATION_STATUS_COMPLETE"),
			itemJava, `table migration item "TableMigration3.5" (TABLE_MIGRATION_STATUS_COMPLETE)`},
		{"the table migration without entityType is Java", item(attrLeaseKey, "TableMigration3.5", attrTableMigration, "TABLE_MIGRATION_STATUS_INIT"),
			itemJava, `table migration item "TableMigration3.5" (TABLE_MIGRATION_STATUS_INIT)`},
		{"a stream info row is Java", item(attrLeaseKey, "123:orders:1", attrEntityType, "STREAM"), itemJava, `stream info row "123:orders:1"`},
		{"a row of an unknown entityType counts as Java", item(attrLeaseKey, "x", attrEntityType, "SOMETHING_NEW"), itemJava, `item "x" of entityType "SOMETHING_NEW"`},
		{"a lock without owner is described as such", item(attrLeaseKey, "Leader", attrEntityType, "LEADER"), itemJava, `leader lock of ""`},
		{"a lock whose owner is a number is still Java", item(attrLeaseKey, "Leader", attrEntityType, "LEADER", attrOwnerName, avN("7")), itemJava, `leader lock of ""`},
		{"an entityType that is a number is unreadable, not Java", item(attrLeaseKey, "x", attrEntityType, avN("1")), itemOther, ""},
		{"an entityType that is a typed nil is unreadable, not Java", item(attrLeaseKey, "x", attrEntityType, (*types.AttributeValueMemberS)(nil)), itemOther, ""},
		{"a nil entityType reads as absent", item(attrLeaseKey, "shardId-000000000000", attrEntityType, nil), itemOther, ""},
		{"a row without key is described with an empty key", item(attrEntityType, "WORKER_METRIC_STATS"), itemJava, `WorkerMetricStats row of ""`},
		{"a long key is truncated", item(attrLeaseKey, strings.Repeat("k", 100), attrEntityType, "STREAM"),
			itemJava, fmt.Sprintf("stream info row %q", strings.Repeat("k", 64)+"...")},
		{"an empty item is no Java item", item(), itemOther, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind, desc := surveyItem(tc.item)
			if kind != tc.kind || desc != tc.desc {
				t.Errorf("surveyItem = %v, %q; want %v, %q", kind, desc, tc.kind, tc.desc)
			}
		})
	}
}

// TestSurveyItemKnowsEveryKCL3Row checks the fixtures of KCL 3.5.1: in the
// lease table, leases are not Java items and every other row is.
func TestSurveyItemKnowsEveryKCL3Row(t *testing.T) {
	java := 0
	for _, f := range loadKCL3Fixtures(t) {
		if !f.table.shared {
			continue
		}
		kind, desc := surveyItem(f.item)
		want := itemJava
		if et, _ := stringAttr(f.item, attrEntityType); et == entityTypeLease {
			want = itemOther
		} else {
			java++
		}
		if kind != want {
			t.Errorf("%s: surveyItem = %v, %q; want %v", f.name, kind, desc, want)
		}
	}
	if java != 5 {
		t.Errorf("%d lease-table rows of KCL 3.x in the fixtures; want 5 (leader lock, WorkerMetricStats, client version, table migration, stream info)", java)
	}
}

// surveyFake is a DynamoDB whose Scan serves pages of items and whose
// DescribeTable knows a set of tables, recording what it was asked.
type surveyFake struct {
	API      // nil: other methods are not called
	pages    [][]map[string]types.AttributeValue
	scanErr  error
	tables   map[string]error // nil: the table exists
	scans    []*dynamodb.ScanInput
	describe []string
}

func (f *surveyFake) Scan(_ context.Context, in *dynamodb.ScanInput, _ ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	f.scans = append(f.scans, in)
	if f.scanErr != nil {
		return nil, f.scanErr
	}
	page := 0
	if in.ExclusiveStartKey != nil {
		_, _ = fmt.Sscan(in.ExclusiveStartKey[attrLeaseKey].(*types.AttributeValueMemberS).Value, &page)
	}
	out := &dynamodb.ScanOutput{}
	if page < len(f.pages) {
		out.Items = f.pages[page]
	}
	if page+1 < len(f.pages) {
		out.LastEvaluatedKey = map[string]types.AttributeValue{attrLeaseKey: avS(fmt.Sprint(page + 1))}
	}
	return out, nil
}

func (f *surveyFake) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	name := aws.ToString(in.TableName)
	f.describe = append(f.describe, name)
	err, ok := f.tables[name]
	if !ok {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Requested resource not found")}
	}
	if err != nil {
		return nil, err
	}
	return &dynamodb.DescribeTableOutput{Table: &types.TableDescription{TableName: in.TableName, TableStatus: types.TableStatusActive}}, nil
}

var (
	heartbeatRow = map[string]types.AttributeValue{attrLeaseKey: avS("kcl#worker#w1"), attrEntityType: avS(entityTypeFleetHeartbeat)}
	metricsRow   = map[string]types.AttributeValue{attrLeaseKey: avS("w-1"), attrEntityType: avS(entityTypeWorkerMetrics)}
	leaseRow     = map[string]types.AttributeValue{attrLeaseKey: avS("shardId-000000000000"), attrEntityType: avS(entityTypeLease)}
)

func newSurveyStore(t *testing.T, f *surveyFake, table string, opts ...Option) *Store {
	t.Helper()
	s, err := New(f, table, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSurveyScansEveryPageWithAProjectionAndEventualConsistency(t *testing.T) {
	f := &surveyFake{pages: [][]map[string]types.AttributeValue{{leaseRow}, {metricsRow}, {leaseRow, heartbeatRow}}}
	s := newSurveyStore(t, f, "app", WithPageSize(2))
	got, err := s.Survey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Fleet || !slices.Equal(got.Java, []string{`WorkerMetricStats row of "w-1"`}) {
		t.Errorf("Survey = %+v; want a fleet and the WorkerMetricStats row", got)
	}
	if len(f.scans) != 3 {
		t.Fatalf("%d Scan calls; want 3, one per page", len(f.scans))
	}
	in := f.scans[0]
	if aws.ToString(in.TableName) != "app" || in.ConsistentRead == nil || *in.ConsistentRead || aws.ToInt32(in.Limit) != 2 {
		t.Errorf("Scan of %q, ConsistentRead %v, Limit %v; want app, false, 2", aws.ToString(in.TableName), in.ConsistentRead, aws.ToInt32(in.Limit))
	}
	var projected []string
	for _, p := range strings.Split(aws.ToString(in.ProjectionExpression), ", ") {
		projected = append(projected, in.ExpressionAttributeNames[p])
	}
	if !slices.Equal(projected, surveyAttrs) {
		t.Errorf("projection %q names %q; want %q", aws.ToString(in.ProjectionExpression), projected, surveyAttrs)
	}
	if len(f.describe) != 0 {
		t.Errorf("DescribeTable of %q; want none once both answers are known", f.describe)
	}
	if st := s.Stats(); st.Calls.Scan != 3 || st.Calls.DescribeTable != 0 {
		t.Errorf("Stats.Calls = %+v; want 3 Scans", st.Calls)
	}
}

func TestSurveyStopsOnceBothAnswersAreKnown(t *testing.T) {
	f := &surveyFake{pages: [][]map[string]types.AttributeValue{{heartbeatRow}, {metricsRow}, {leaseRow}, {leaseRow}}}
	s := newSurveyStore(t, f, "app")
	got, err := s.Survey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Fleet || len(got.Java) != 1 {
		t.Errorf("Survey = %+v; want a fleet and one Java item", got)
	}
	if len(f.scans) != 2 || len(f.describe) != 0 {
		t.Errorf("%d Scans and DescribeTable of %q; want 2 Scans and none", len(f.scans), f.describe)
	}
}

func TestSurveyLooksForKCL3Tables(t *testing.T) {
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform dynamodb:DescribeTable"}
	tests := []struct {
		name     string
		table    string
		opts     []Option
		tables   map[string]error
		describe []string // tables described, in order
		java     []string
		err      string // a substring of the error; "" for none
	}{
		{name: "without the tables nothing is listed", table: "app",
			describe: []string{"app-WorkerMetricStats", "app-CoordinatorState"}},
		{name: "the tables named after the lease table are listed", table: "app",
			tables:   map[string]error{"app-WorkerMetricStats": nil, "app-CoordinatorState": nil},
			describe: []string{"app-WorkerMetricStats", "app-CoordinatorState"},
			java:     []string{"WorkerMetricStats table app-WorkerMetricStats", "CoordinatorState table app-CoordinatorState"}},
		{name: "tables of another application are not looked for", table: "app",
			tables:   map[string]error{"other-WorkerMetricStats": nil},
			describe: []string{"app-WorkerMetricStats", "app-CoordinatorState"}},
		{name: "WithKCL3Tables names the tables", table: "leases", opts: []Option{WithKCL3Tables("app-WorkerMetricStats", "app-CoordinatorState")},
			tables:   map[string]error{"app-CoordinatorState": nil},
			describe: []string{"app-WorkerMetricStats", "app-CoordinatorState"},
			java:     []string{"CoordinatorState table app-CoordinatorState"}},
		{name: "WithKCL3Tables with empty names skips them", table: "app", opts: []Option{WithKCL3Tables("", "")},
			tables: map[string]error{"app-WorkerMetricStats": nil}},
		{name: "WithKCL3Tables may skip one", table: "app", opts: []Option{WithKCL3Tables("", "app-CoordinatorState")},
			describe: []string{"app-CoordinatorState"}},
		{name: "a name too long for a table is not looked for", table: strings.Repeat("a", 238),
			describe: []string{strings.Repeat("a", 238) + "-CoordinatorState"}},
		{name: "an access denied fails, naming the table and the way out", table: "app",
			tables:   map[string]error{"app-WorkerMetricStats": denied},
			describe: []string{"app-WorkerMetricStats"},
			err:      "describe WorkerMetricStats table app-WorkerMetricStats (WithKCL3Tables can skip it): api error AccessDeniedException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &surveyFake{pages: [][]map[string]types.AttributeValue{{leaseRow}}, tables: tc.tables}
			s := newSurveyStore(t, f, tc.table, tc.opts...)
			got, err := s.Survey(t.Context())
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("Survey: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Survey = %v; want an error containing %q", err, tc.err)
			case tc.err != "" && errors.Is(err, ErrTableNotFound):
				t.Errorf("Survey = %v; it must not match ErrTableNotFound", err)
			}
			if !slices.Equal(f.describe, tc.describe) {
				t.Errorf("described %q; want %q", f.describe, tc.describe)
			}
			if got.Fleet || !slices.Equal(got.Java, tc.java) {
				t.Errorf("Survey = %+v; want no fleet and Java %q", got, tc.java)
			}
		})
	}
}

func TestSurveyOfAMissingTableSaysSo(t *testing.T) {
	f := &surveyFake{scanErr: &types.ResourceNotFoundException{Message: aws.String("Cannot do operations on a non-existent table")}}
	s := newSurveyStore(t, f, "app")
	_, err := s.Survey(t.Context())
	if !errors.Is(err, ErrTableNotFound) || !strings.Contains(err.Error(), "survey of app") {
		t.Errorf("Survey = %v; want an error matching ErrTableNotFound that names the table", err)
	}
	if len(f.describe) != 0 {
		t.Errorf("DescribeTable of %q after the failed Scan", f.describe)
	}
}

func TestWithKCL3TablesValidates(t *testing.T) {
	client := dynamodb.New(dynamodb.Options{Region: "us-east-1"})
	tests := []struct {
		name    string
		opt     Option
		wantErr string
	}{
		{"two names are accepted", WithKCL3Tables("app-WorkerMetricStats", "app-CoordinatorState"), ""},
		{"empty names are accepted", WithKCL3Tables("", ""), ""},
		{"a name with a slash is rejected", WithKCL3Tables("app/x", ""), `WithKCL3Tables("app/x", ""): table name "app/x": character '/'`},
		{"a short name is rejected", WithKCL3Tables("", "ab"), `table name "ab": length 2`},
		{"the lease table is rejected", WithKCL3Tables("leases", ""), `WithKCL3Tables: "leases" is the lease table`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(client, "leases", tc.opt)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("New = %v; want an error containing %q", err, tc.wantErr)
			case err != nil && !strings.HasPrefix(err.Error(), "dynamolease: "):
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

// FuzzSurveyItem edits KCL 3.5.1's lease-table rows and kcl-fleet items as
// FuzzDecodeCoordinationRows does: surveyItem must never panic, must describe
// every Java item in bounded text, and must never take a LEASE row, or a
// kcl-fleet item, for a Java one.
func FuzzSurveyItem(f *testing.F) {
	var bases []map[string]types.AttributeValue
	for _, fx := range loadKCL3Fixtures(f) {
		if fx.table.shared {
			bases = append(bases, fx.item)
		}
	}
	bases = append(bases, heartbeatRow, leaseRow, validItem())
	for i := range bases {
		f.Add(uint8(i), []byte{})
	}
	f.Add(uint8(0), []byte{1, 4, 0x80 | 2})      // entityType N "1"
	f.Add(uint8(1), []byte{0, 15, 0})            // leaseKey nil
	f.Add(uint8(2), []byte{1, 0xff, 0, 4, 0, 0}) // no entityType, empty cv
	names := append(slices.Clone(surveyAttrs), attrLeaseOwner, attrLeaseCounter)
	f.Fuzz(func(t *testing.T, pick uint8, edits []byte) {
		item := maps.Clone(bases[int(pick)%len(bases)])
		for len(edits) >= 3 {
			name := names[int(edits[0])%len(names)]
			typ, sel := edits[1], edits[2]
			edits = edits[3:]
			if typ == 0xff {
				delete(item, name)
				continue
			}
			var raw []byte
			if sel&fuzzWordFlag != 0 {
				raw = []byte(fuzzWords[int(sel&^fuzzWordFlag)%len(fuzzWords)])
			} else {
				n := min(int(sel&fuzzMaxRaw), len(edits))
				raw, edits = edits[:n], edits[n:]
			}
			item[name] = fuzzValue(typ%16, raw)
		}
		kind, desc := surveyItem(item)
		et, _ := stringAttr(item, attrEntityType)
		switch {
		case kind != itemOther && kind != itemFleet && kind != itemJava:
			t.Fatalf("surveyItem = %v", kind)
		case kind == itemJava && (desc == "" || len(desc) > 300):
			t.Fatalf("Java item described as %q", desc)
		case kind != itemJava && desc != "":
			t.Fatalf("%v item described as %q", kind, desc)
		case et == entityTypeLease && kind != itemOther:
			t.Fatalf("a LEASE row is a %v item", kind)
		case strings.HasPrefix(et, fleetEntityTypePrefix) && kind != itemFleet:
			t.Fatalf("a %s row is a %v item", et, kind)
		}
	})
}

// The tests below run against DynamoDB Local.

// createHashKeyTable creates a table with hash key hashKey (S), as KCL
// 3.0–3.4 create their WorkerMetricStats ("wid") and CoordinatorState ("key")
// tables, and deletes it when the test ends.
func createHashKeyTable(t *testing.T, client *dynamodb.Client, name, hashKey string) {
	t.Helper()
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String(hashKey), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String(hashKey), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	deleteTableOnCleanup(t, client, name)
	testenv.Eventually(t, time.Minute, 100*time.Millisecond, func() bool {
		out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		return err == nil && out.Table.TableStatus == types.TableStatusActive
	}, "table %s not ACTIVE", name)
}

func survey(t *testing.T, s *Store) lease.Survey {
	t.Helper()
	got, err := s.Survey(t.Context())
	if err != nil {
		t.Fatalf("Survey: %v", err)
	}
	return got
}

func TestSurveyOnDynamoDB(t *testing.T) {
	t.Run("an empty table and a table of leases hold neither kind", func(t *testing.T) {
		s, client := newTestStore(t)
		before := s.Stats()
		if got := survey(t, s); got.Fleet || got.Java != nil {
			t.Errorf("Survey of an empty table = %+v; want the zero Survey", got)
		}
		if st := s.Stats(); st.Calls.Scan-before.Calls.Scan != 1 || st.Calls.DescribeTable-before.Calls.DescribeTable != 2 {
			t.Errorf("Survey made %d Scans and %d DescribeTables; want 1 and 2",
				st.Calls.Scan-before.Calls.Scan, st.Calls.DescribeTable-before.Calls.DescribeTable)
		}
		if err := s.Create(t.Context(), lease.Lease{Key: "shardId-000000000000", Checkpoint: mustAt(t, "1", 0)}); err != nil {
			t.Fatal(err)
		}
		kcl2 := validItem()
		delete(kcl2, attrEntityType)
		putRaw(t, client, s.Table(), kcl2)
		for _, f := range loadKCL3Fixtures(t) {
			if et, _ := stringAttr(f.item, attrEntityType); f.table.shared && et == entityTypeLease {
				putRaw(t, client, s.Table(), f.item)
			}
		}
		if got := survey(t, s); got.Fleet || got.Java != nil {
			t.Errorf("Survey of a table of leases = %+v; want the zero Survey", got)
		}
	})
	t.Run("a Join or a Beat makes a kcl-fleet table", func(t *testing.T) {
		s, _ := newTestStore(t)
		if err := s.Join(t.Context(), "w1"); err != nil {
			t.Fatal(err)
		}
		if got := survey(t, s); !got.Fleet || got.Java != nil {
			t.Errorf("Survey after Join = %+v; want Fleet only", got)
		}
		s, _ = newTestStore(t)
		if _, err := s.Beat(t.Context(), "w1", lease.WorkerStarting, 0); err != nil {
			t.Fatal(err)
		}
		if got := survey(t, s); !got.Fleet || got.Java != nil {
			t.Errorf("Survey after Beat = %+v; want Fleet only", got)
		}
	})
	t.Run("each KCL 3.x row of the lease table is listed", func(t *testing.T) {
		s, client := newTestStore(t, WithPageSize(1))
		var want []string
		for _, f := range loadKCL3Fixtures(t) {
			if et, _ := stringAttr(f.item, attrEntityType); !f.table.shared || et == entityTypeLease {
				continue
			}
			putRaw(t, client, s.Table(), f.item)
			_, desc := surveyItem(f.item)
			want = append(want, desc)
			slices.Sort(want)
			if got := survey(t, s); got.Fleet || !slices.Equal(got.Java, want) {
				t.Errorf("Survey after putting %s = %+v; want Java %q", f.name, got, want)
			}
		}
		if len(want) != 5 {
			t.Errorf("put %d KCL 3.x rows; want 5", len(want))
		}
		// A kcl-fleet item too: both answers are known, whatever page ends
		// the Scan.
		if err := s.Join(t.Context(), "w1"); err != nil {
			t.Fatal(err)
		}
		if got := survey(t, s); !got.Fleet || len(got.Java) == 0 {
			t.Errorf("Survey with a roster = %+v; want Fleet and Java items", got)
		}
	})
	t.Run("the KCL 3.0-3.4 tables are listed", func(t *testing.T) {
		s, client := newTestStore(t)
		wms, cs := s.Table()+"-WorkerMetricStats", s.Table()+"-CoordinatorState"
		createHashKeyTable(t, client, wms, attrWorkerID)
		if got := survey(t, s); got.Fleet || !slices.Equal(got.Java, []string{"WorkerMetricStats table " + wms}) {
			t.Errorf("Survey = %+v; want the WorkerMetricStats table", got)
		}
		createHashKeyTable(t, client, cs, attrCoordinatorKey)
		want := []string{"WorkerMetricStats table " + wms, "CoordinatorState table " + cs}
		if got := survey(t, s); got.Fleet || !slices.Equal(got.Java, want) {
			t.Errorf("Survey = %+v; want Java %q", got, want)
		}
		// Named for an application whose lease table has a name of its own.
		other, err := New(client, s.Table(), WithKCL3Tables("", cs))
		if err != nil {
			t.Fatal(err)
		}
		if got := survey(t, other); !slices.Equal(got.Java, want[1:]) {
			t.Errorf("Survey with WithKCL3Tables(\"\", %q) = %+v; want Java %q", cs, got, want[1:])
		}
	})
	t.Run("a missing lease table is an error that says so", func(t *testing.T) {
		client := testenv.DynamoDB(t)
		table := testenv.UniqueName(t, "missing")
		s, err := New(client, table)
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Survey(t.Context())
		if !errors.Is(err, ErrTableNotFound) || !strings.Contains(err.Error(), table) {
			t.Errorf("Survey = %v; want an error matching ErrTableNotFound naming %s", err, table)
		}
	})
	t.Run("malformed items neither fail nor panic", func(t *testing.T) {
		s, client := newTestStore(t)
		for _, item := range []map[string]types.AttributeValue{
			{attrLeaseKey: avS("bad-type"), attrEntityType: avN("7")},
			{attrLeaseKey: avS("bad-set"), attrEntityType: avSS("LEADER", "LEASE")},
			{attrLeaseKey: avS("Leader"), attrEntityType: avS(entityTypeLeader), attrOwnerName: avN("1"), attrRecordVersionNumber: avBOOL(true)},
			{attrLeaseKey: avS("Migration3.0"), attrClientVersion: &types.AttributeValueMemberL{Value: []types.AttributeValue{avS("x")}}},
			{attrLeaseKey: avS(strings.Repeat("w", 1000)), attrEntityType: avS(entityTypeWorkerMetrics), attrMetricsUpdated: avS("soon")},
			{attrLeaseKey: avS("kcl#worker#broken"), attrEntityType: avS(entityTypeFleetHeartbeat), attrBeatCounter: avS("x")},
		} {
			putRaw(t, client, s.Table(), item)
		}
		got := survey(t, s)
		want := []string{
			`WorkerMetricStats row of "` + strings.Repeat("w", 64) + `..."`,
			`leader lock of ""`,
		}
		if !got.Fleet || !slices.Equal(got.Java, want) {
			t.Errorf("Survey = %+v; want Fleet and Java %q", got, want)
		}
	})
}
