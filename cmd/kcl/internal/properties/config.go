package properties

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// InitialPosition is where a shard without a checkpoint starts.
type InitialPosition int

// Initial positions.
const (
	// Latest starts after the newest record (KCL's default).
	Latest InitialPosition = iota + 1
	// TrimHorizon starts at the oldest record still in the stream.
	TrimHorizon
	// AtTimestamp starts at Config.InitialTimestamp
	// (initialPositionInStreamExtended).
	AtTimestamp
)

func (p InitialPosition) String() string {
	switch p {
	case Latest:
		return "LATEST"
	case TrimHorizon:
		return "TRIM_HORIZON"
	case AtTimestamp:
		return "AT_TIMESTAMP"
	}
	return fmt.Sprintf("InitialPosition(%d)", int(p))
}

// RetrievalMode is how records are read. The file's DEFAULT is resolved by
// [Load], so a Config holds only Polling or FanOut.
type RetrievalMode int

// Retrieval modes.
const (
	// FanOut is enhanced fan-out (SubscribeToShard), KCL's default.
	FanOut RetrievalMode = iota + 1
	// Polling is GetRecords polling.
	Polling
)

func (m RetrievalMode) String() string {
	switch m {
	case FanOut:
		return "FANOUT"
	case Polling:
		return "POLLING"
	}
	return fmt.Sprintf("RetrievalMode(%d)", int(m))
}

// ClientVersion is KCL 3.x's clientVersionConfig.
type ClientVersion int

// Client versions.
const (
	// ClientVersion3x is CLIENT_VERSION_CONFIG_3X, the default.
	ClientVersion3x ClientVersion = iota + 1
	// ClientVersionCompatibleWith2x is CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X,
	// KCL's mode for migrating a 2.x fleet.
	ClientVersionCompatibleWith2x
)

func (v ClientVersion) String() string {
	switch v {
	case ClientVersion3x:
		return "CLIENT_VERSION_CONFIG_3X"
	case ClientVersionCompatibleWith2x:
		return "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X"
	}
	return fmt.Sprintf("ClientVersion(%d)", int(v))
}

// KCL's defaults, applied when a key is absent or, as in KCL, set to 0.
const (
	DefaultFailoverTime                = 10 * time.Second
	DefaultMaxRecords                  = 10000
	DefaultIdleTimeBetweenReads        = 1500 * time.Millisecond
	DefaultShardSyncInterval           = 60 * time.Second
	DefaultParentShardPollInterval     = 10 * time.Second
	DefaultMaxLeasesToStealAtOneTime   = 1
	DefaultGracefulLeaseHandoffTimeout = 30 * time.Second
)

// Config is a validated MultiLangDaemon configuration. Each field names the
// key it comes from; defaults are resolved, so a zero value below means what
// its comment says, never "not given".
type Config struct {
	// Executable is executableName split on runs of spaces: argv of the
	// child process, run without a shell.
	Executable []string
	// ApplicationName is applicationName.
	ApplicationName string
	// TableName is tableName, else ApplicationName: the lease table.
	TableName string
	// StreamName is streamName, or the name inside StreamARN when that is set.
	StreamName string
	// StreamARN is streamArn; when set it wins over streamName.
	StreamARN string
	// Credentials is AwsCredentialsProvider (the key is matched without
	// regard to case, as KCL does): a chain tried in order.
	Credentials []CredentialsProvider
	// DynamoDBCredentials and CloudWatchCredentials are
	// AwsCredentialsProviderDynamoDB and AwsCredentialsProviderCloudWatch;
	// nil means use Credentials.
	DynamoDBCredentials   []CredentialsProvider
	CloudWatchCredentials []CredentialsProvider

	// Region is regionName; "" means the SDK's default resolution.
	Region string
	// KinesisEndpoint and DynamoDBEndpoint are kinesisEndpoint and
	// dynamoDBEndpoint; "" means the SDK's default endpoint.
	KinesisEndpoint  string
	DynamoDBEndpoint string
	// WorkerID is workerId; "" means the host generates one (KCL: a random UUID).
	WorkerID string

	// InitialPosition is initialPositionInStream (default Latest), or
	// AtTimestamp when initialPositionInStreamExtended is set.
	InitialPosition InitialPosition
	// InitialTimestamp is initialPositionInStreamExtended (epoch seconds),
	// set only with AtTimestamp.
	InitialTimestamp time.Time

	// FailoverTime is failoverTimeMillis: the lease duration.
	FailoverTime time.Duration
	// Coordination is kclCoordination, a key of kcl's own: "auto" (the
	// default), "fleet" or "kcl" (consumer.CoordinationAuto,
	// CoordinationFleet, CoordinationKCL). Unset, with
	// clientVersionConfig = CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X, it is
	// "kcl": the fleet is declared to include Java KCL 2.x workers.
	Coordination string
	// FleetFailoverTime is kclFleetFailoverTimeMillis, a key of kcl's own:
	// the failover time of kcl fleet coordination (0: its default, 2 s).
	FleetFailoverTime time.Duration
	// MetricsAddress is kclMetricsAddress, a key of kcl's own: the
	// host:port on which the host serves /metrics (Prometheus), /healthz
	// and /readyz; "" (the default) serves nothing.
	MetricsAddress string
	// MaxRecords is maxRecords: records per GetRecords call (polling), ≤ 10000.
	MaxRecords int
	// IdleTimeBetweenReads is idleTimeBetweenReadsInMillis (polling).
	IdleTimeBetweenReads time.Duration
	// ShardSyncInterval is shardSyncIntervalMillis.
	ShardSyncInterval time.Duration
	// ParentShardPollInterval is parentShardPollIntervalMillis.
	ParentShardPollInterval time.Duration
	// MaxLeasesForWorker is maxLeasesForWorker; 0 means unlimited.
	MaxLeasesForWorker int
	// MaxLeasesToStealAtOneTime is maxLeasesToStealAtOneTime.
	MaxLeasesToStealAtOneTime int
	// CleanupLeasesUponShardCompletion is cleanupLeasesUponShardCompletion.
	// As in KCL, false means unset, so this is always true (a false in the
	// file gives a Warning).
	CleanupLeasesUponShardCompletion bool
	// CallProcessRecordsEvenForEmptyRecordList is
	// callProcessRecordsEvenForEmptyRecordList (default false).
	CallProcessRecordsEvenForEmptyRecordList bool

	// RetrievalMode is retrievalMode with DEFAULT resolved: Polling if any
	// polling key (maxRecords, idleTimeBetweenReadsInMillis,
	// retryGetRecordsInSeconds, maxGetRecordsThreadPool) is set to a
	// non-zero value, else FanOut.
	RetrievalMode RetrievalMode
	// ConsumerARN is consumerArn: an existing enhanced fan-out consumer.
	ConsumerARN string
	// ConsumerName is consumerName; with FanOut and no ConsumerARN it
	// defaults to ApplicationName, as in KCL.
	ConsumerName string

	// ProcessingLanguage is processingLanguage; KCL adds it to its user
	// agent, kcl ignores it.
	ProcessingLanguage string
	// MaxActiveThreads is maxActiveThreads; it bounds the Java host's I/O
	// threads, kcl ignores it.
	MaxActiveThreads int
	// Timeout is timeoutInSeconds: how long the host waits for one message
	// from a child; 0 means no limit.
	Timeout time.Duration
	// ShutdownGrace is shutdownGraceMillis: how long a graceful stop waits;
	// 0 means unset, and the host uses the Worker's shutdown timeout (the
	// Java host does not wait at all).
	ShutdownGrace time.Duration
	// GracefulLeaseHandoffTimeout is gracefulLeaseHandoffTimeoutMillis.
	GracefulLeaseHandoffTimeout time.Duration
	// ClientVersion is clientVersionConfig (default ClientVersion3x).
	ClientVersion ClientVersion
}

// LoadFile reads the properties file name with [Load].
func LoadFile(name string) (*Config, []Warning, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, fmt.Errorf("properties: %w", err)
	}
	defer f.Close()
	return Load(f)
}

// Load parses a MultiLangDaemon properties file and validates it. The error
// joins every problem found: [*SyntaxError], [*ValueError] and
// [*MissingKeyError] values, to be found with errors.As. Warnings name keys
// that have no effect; they are returned with or without an error.
func Load(r io.Reader) (*Config, []Warning, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("properties: read: %w", err)
	}
	entries, err := parse(decode(data))
	l := loader{
		c: &Config{
			InitialPosition:                  Latest,
			FailoverTime:                     DefaultFailoverTime,
			MaxRecords:                       DefaultMaxRecords,
			IdleTimeBetweenReads:             DefaultIdleTimeBetweenReads,
			ShardSyncInterval:                DefaultShardSyncInterval,
			ParentShardPollInterval:          DefaultParentShardPollInterval,
			MaxLeasesToStealAtOneTime:        DefaultMaxLeasesToStealAtOneTime,
			CleanupLeasesUponShardCompletion: true,
			GracefulLeaseHandoffTimeout:      DefaultGracefulLeaseHandoffTimeout,
			ClientVersion:                    ClientVersion3x,
		},
	}
	if err != nil {
		l.errs = append(l.errs, err)
	}
	l.load(entries)
	if len(l.errs) > 0 {
		return nil, l.warnings, errors.Join(l.errs...)
	}
	return l.c, l.warnings, nil
}

type loader struct {
	c        *Config
	warnings []Warning
	errs     []error
	// pollingKeySet records a non-zero polling key, for retrievalMode DEFAULT.
	pollingKeySet bool
	// arnStreamName is the stream name inside streamArn.
	arnStreamName string
}

func (l *loader) fail(e Entry, reason string) {
	l.errs = append(l.errs, &ValueError{Key: e.Key, Line: e.Line, Value: e.Value, Reason: reason})
}

func (l *loader) warn(e Entry, msg string) {
	l.warnings = append(l.warnings, Warning{Key: e.Key, Line: e.Line, Message: msg})
}

// canonicalKey folds every case of AwsCredentialsProvider… to one spelling,
// as KCL's configurator does.
func canonicalKey(k string) string {
	const p = "awscredentialsprovider"
	if len(k) >= len(p) && strings.EqualFold(k[:len(p)], p) {
		return "AwsCredentialsProvider" + k[len(p):]
	}
	return k
}

func (l *loader) load(entries []Entry) {
	// The last of duplicate keys wins, as in Java; earlier ones are dropped
	// before validation so that only the value in effect can fail.
	last := make(map[string]int)
	for i, e := range entries {
		last[canonicalKey(e.Key)] = i
	}
	byKey := make(map[string]Entry)
	for i, e := range entries {
		k := canonicalKey(e.Key)
		if last[k] != i {
			continue
		}
		e.Value = strings.TrimSpace(e.Value)
		byKey[k] = e
		set, ok := setters[k]
		if !ok {
			l.warn(e, unknownKeyMessage(e.Key))
			continue
		}
		set(l, e)
	}
	l.finish(byKey)
}

func unknownKeyMessage(key string) string {
	for k := range setters {
		if strings.EqualFold(k, key) {
			return fmt.Sprintf("unknown key, ignored (did you mean %s?)", k)
		}
	}
	return "unknown key, ignored"
}

// finish checks required keys and resolves what depends on several keys.
func (l *loader) finish(byKey map[string]Entry) {
	c := l.c
	if len(c.Executable) == 0 {
		if _, ok := byKey["executableName"]; !ok {
			l.errs = append(l.errs, &MissingKeyError{Key: "executableName"})
		}
	}
	if c.ApplicationName == "" {
		l.errs = append(l.errs, &MissingKeyError{Key: "applicationName"})
	}
	if c.TableName == "" {
		c.TableName = c.ApplicationName
	}
	if c.Coordination == "" {
		c.Coordination = "auto"
		if c.ClientVersion == ClientVersionCompatibleWith2x {
			c.Coordination = "kcl"
		}
	}
	if c.StreamARN != "" {
		c.StreamName = l.arnStreamName // the ARN wins, as in KCL
	}
	if c.StreamName == "" && byKey["streamArn"].Value == "" {
		l.errs = append(l.errs, &MissingKeyError{Key: "streamName", Alt: "streamArn"})
	}
	if _, ok := byKey["AwsCredentialsProvider"]; !ok {
		l.errs = append(l.errs, &MissingKeyError{Key: "AwsCredentialsProvider"})
	}
	if ext, ok := byKey["initialPositionInStreamExtended"]; ok && c.InitialPosition == AtTimestamp {
		if pos, ok := byKey["initialPositionInStream"]; ok {
			l.warn(pos, "ignored: "+ext.Key+" sets the initial position to AT_TIMESTAMP")
		}
	}
	if c.RetrievalMode == 0 { // absent or DEFAULT
		c.RetrievalMode = FanOut
		if l.pollingKeySet {
			c.RetrievalMode = Polling
		}
	}
	if c.RetrievalMode == FanOut && c.ConsumerARN == "" && c.ConsumerName == "" {
		c.ConsumerName = c.ApplicationName
	}
}

type setter func(l *loader, e Entry)

var setters map[string]setter

func init() {
	setters = map[string]setter{
		"executableName": func(l *loader, e Entry) {
			argv := strings.FieldsFunc(e.Value, func(r rune) bool { return r == ' ' })
			if len(argv) == 0 {
				l.fail(e, "empty command")
				return
			}
			l.c.Executable = argv
		},
		"applicationName":    str(func(c *Config) *string { return &c.ApplicationName }),
		"tableName":          str(func(c *Config) *string { return &c.TableName }),
		"streamName":         str(func(c *Config) *string { return &c.StreamName }),
		"streamArn":          setStreamARN,
		"regionName":         str(func(c *Config) *string { return &c.Region }),
		"kinesisEndpoint":    endpoint(func(c *Config) *string { return &c.KinesisEndpoint }),
		"dynamoDBEndpoint":   endpoint(func(c *Config) *string { return &c.DynamoDBEndpoint }),
		"workerId":           str(func(c *Config) *string { return &c.WorkerID }),
		"consumerName":       str(func(c *Config) *string { return &c.ConsumerName }),
		"consumerArn":        setConsumerARN,
		"processingLanguage": str(func(c *Config) *string { return &c.ProcessingLanguage }),

		"AwsCredentialsProvider":           credentials(func(c *Config) *[]CredentialsProvider { return &c.Credentials }),
		"AwsCredentialsProviderDynamoDB":   credentials(func(c *Config) *[]CredentialsProvider { return &c.DynamoDBCredentials }),
		"AwsCredentialsProviderCloudWatch": credentials(func(c *Config) *[]CredentialsProvider { return &c.CloudWatchCredentials }),

		"initialPositionInStream":         setInitialPosition,
		"initialPositionInStreamExtended": setInitialTimestamp,

		"failoverTimeMillis":         millis(func(c *Config) *time.Duration { return &c.FailoverTime }, false),
		"kclFleetFailoverTimeMillis": millis(func(c *Config) *time.Duration { return &c.FleetFailoverTime }, false),
		"kclCoordination":            setCoordination,
		"kclMetricsAddress": func(l *loader, e Entry) {
			if _, port, err := net.SplitHostPort(e.Value); err != nil || port == "" {
				l.fail(e, "not a host:port address, such as 0.0.0.0:9090 or 127.0.0.1:9090")
				return
			}
			l.c.MetricsAddress = e.Value
		},
		"idleTimeBetweenReadsInMillis":      millis(func(c *Config) *time.Duration { return &c.IdleTimeBetweenReads }, true),
		"shardSyncIntervalMillis":           millis(func(c *Config) *time.Duration { return &c.ShardSyncInterval }, false),
		"parentShardPollIntervalMillis":     millis(func(c *Config) *time.Duration { return &c.ParentShardPollInterval }, false),
		"shutdownGraceMillis":               millis(func(c *Config) *time.Duration { return &c.ShutdownGrace }, false),
		"gracefulLeaseHandoffTimeoutMillis": millis(func(c *Config) *time.Duration { return &c.GracefulLeaseHandoffTimeout }, false),
		"timeoutInSeconds":                  seconds(func(c *Config) *time.Duration { return &c.Timeout }),

		"maxRecords":                setMaxRecords,
		"maxLeasesForWorker":        count(func(c *Config) *int { return &c.MaxLeasesForWorker }, false),
		"maxLeasesToStealAtOneTime": count(func(c *Config) *int { return &c.MaxLeasesToStealAtOneTime }, false),
		"maxActiveThreads":          count(func(c *Config) *int { return &c.MaxActiveThreads }, false),
		"retryGetRecordsInSeconds":  count(nil, true),
		"maxGetRecordsThreadPool":   count(nil, true),

		"cleanupLeasesUponShardCompletion": func(l *loader, e Entry) {
			b, ok := parseBool(e.Value)
			switch {
			case !ok:
				l.fail(e, "not a boolean (true or false)")
			case !b:
				l.warn(e, "false is ignored, as in KCL: leases of finished shards are cleaned up")
			}
		},
		"callProcessRecordsEvenForEmptyRecordList": func(l *loader, e Entry) {
			b, ok := parseBool(e.Value)
			if !ok {
				l.fail(e, "not a boolean (true or false)")
				return
			}
			l.c.CallProcessRecordsEvenForEmptyRecordList = b
		},
		"retrievalMode":       setRetrievalMode,
		"clientVersionConfig": setClientVersion,
	}
}

func str(field func(*Config) *string) setter {
	return func(l *loader, e Entry) { *field(l.c) = e.Value }
}

func endpoint(field func(*Config) *string) setter {
	return func(l *loader, e Entry) {
		if e.Value != "" && !strings.Contains(e.Value, "://") {
			// KCL prepends https:// to an endpoint without a scheme.
			*field(l.c) = "https://" + e.Value
			return
		}
		*field(l.c) = e.Value
	}
}

func credentials(field func(*Config) *[]CredentialsProvider) setter {
	return func(l *loader, e Entry) {
		chain, reason := parseCredentials(e.Value)
		if reason != "" {
			l.fail(e, reason)
			return
		}
		*field(l.c) = chain
	}
}

// whole parses a non-negative whole number.
func (l *loader) whole(e Entry, unit string) (int64, bool) {
	n, err := strconv.ParseInt(e.Value, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			l.fail(e, "too large")
		} else {
			l.fail(e, "not a whole number"+unit)
		}
		return 0, false
	}
	if n < 0 {
		l.fail(e, "must not be negative")
		return 0, false
	}
	return n, true
}

// millis sets a duration given in milliseconds; 0 leaves the default.
func millis(field func(*Config) *time.Duration, polling bool) setter {
	return func(l *loader, e Entry) {
		n, ok := l.whole(e, " of milliseconds")
		if !ok || n == 0 {
			return
		}
		if n > math.MaxInt64/int64(time.Millisecond) {
			l.fail(e, "too large")
			return
		}
		l.pollingKeySet = l.pollingKeySet || polling
		*field(l.c) = time.Duration(n) * time.Millisecond
	}
}

func seconds(field func(*Config) *time.Duration) setter {
	return func(l *loader, e Entry) {
		n, ok := l.whole(e, " of seconds")
		if !ok || n == 0 {
			return
		}
		if n > math.MaxInt64/int64(time.Second) {
			l.fail(e, "too large")
			return
		}
		*field(l.c) = time.Duration(n) * time.Second
	}
}

// count sets a count; 0 leaves the default. field nil: validated only.
func count(field func(*Config) *int, polling bool) setter {
	return func(l *loader, e Entry) {
		n, ok := l.whole(e, "")
		if !ok || n == 0 {
			return
		}
		if n > math.MaxInt32 {
			l.fail(e, "too large")
			return
		}
		l.pollingKeySet = l.pollingKeySet || polling
		if field != nil {
			*field(l.c) = int(n)
		}
	}
}

func setMaxRecords(l *loader, e Entry) {
	n, ok := l.whole(e, "")
	if !ok || n == 0 {
		return
	}
	if n > DefaultMaxRecords {
		l.fail(e, "at most 10000 (the GetRecords limit)")
		return
	}
	l.pollingKeySet = true
	l.c.MaxRecords = int(n)
}

// parseBool accepts what Java's BeanUtils accepts.
func parseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "on", "1":
		return true, true
	case "false", "no", "n", "off", "0":
		return false, true
	}
	return false, false
}

func setInitialPosition(l *loader, e Entry) {
	var p InitialPosition
	switch strings.ToUpper(e.Value) {
	case "LATEST":
		p = Latest
	case "TRIM_HORIZON":
		p = TrimHorizon
	case "AT_TIMESTAMP":
		l.fail(e, "AT_TIMESTAMP needs a time: set initialPositionInStreamExtended (epoch seconds) instead")
		return
	default:
		l.fail(e, "unknown initial position (allowed: LATEST, TRIM_HORIZON)")
		return
	}
	if l.c.InitialPosition != AtTimestamp { // initialPositionInStreamExtended wins
		l.c.InitialPosition = p
	}
}

func setInitialTimestamp(l *loader, e Entry) {
	n, err := strconv.ParseInt(e.Value, 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		l.fail(e, "not a time in whole seconds since 1970-01-01 UTC")
		return
	}
	l.c.InitialPosition = AtTimestamp
	l.c.InitialTimestamp = time.Unix(n, 0).UTC()
}

func setRetrievalMode(l *loader, e Entry) {
	switch strings.ToUpper(e.Value) {
	case "FANOUT":
		l.c.RetrievalMode = FanOut
	case "POLLING":
		l.c.RetrievalMode = Polling
	case "DEFAULT":
		l.c.RetrievalMode = 0 // resolved in finish
	default:
		l.fail(e, "unknown retrieval mode (allowed: FANOUT, POLLING, DEFAULT)")
	}
}

func setCoordination(l *loader, e Entry) {
	switch v := strings.ToLower(strings.TrimSpace(e.Value)); v {
	case "auto", "fleet", "kcl":
		l.c.Coordination = v
	default:
		l.fail(e, "unknown coordination (allowed: auto, fleet, kcl)")
	}
}

func setClientVersion(l *loader, e Entry) {
	switch strings.ToUpper(e.Value) {
	case "CLIENT_VERSION_CONFIG_3X":
		l.c.ClientVersion = ClientVersion3x
	case "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X":
		l.c.ClientVersion = ClientVersionCompatibleWith2x
	default:
		l.fail(e, "unknown client version (allowed: CLIENT_VERSION_CONFIG_3X, CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X)")
	}
}

// parseARN splits an ARN into its six fields.
func parseARN(s string) (service, resource string, ok bool) {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[1] == "" || f[3] == "" || f[4] == "" {
		return "", "", false
	}
	return f[2], f[5], true
}

func setStreamARN(l *loader, e Entry) {
	if e.Value == "" {
		return
	}
	service, res, ok := parseARN(e.Value)
	name, found := strings.CutPrefix(res, "stream/")
	if !ok || service != "kinesis" || !found || name == "" || strings.Contains(name, "/") {
		l.fail(e, "not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)")
		return
	}
	l.c.StreamARN = e.Value
	l.arnStreamName = name
}

func setConsumerARN(l *loader, e Entry) {
	if e.Value == "" {
		return
	}
	service, res, ok := parseARN(e.Value)
	if !ok || service != "kinesis" || !strings.HasPrefix(res, "stream/") || !strings.Contains(res, "/consumer/") {
		l.fail(e, "not a Kinesis stream consumer ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:TIMESTAMP)")
		return
	}
	l.c.ConsumerARN = e.Value
}
