package properties

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// base is the smallest valid file.
const base = "executableName=python3 app.py\napplicationName=app\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider\n"

func mustLoad(t *testing.T, in string) (*Config, []Warning) {
	t.Helper()
	c, w, err := Load(strings.NewReader(in))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c, w
}

func TestLoadDefaults(t *testing.T) {
	c, w := mustLoad(t, base)
	want := &Config{
		Executable:                       []string{"python3", "app.py"},
		ApplicationName:                  "app",
		TableName:                        "app",
		StreamName:                       "s",
		Credentials:                      []CredentialsProvider{{Kind: CredentialsDefault}},
		InitialPosition:                  Latest,
		FailoverTime:                     10 * time.Second,
		Coordination:                     "auto",
		MaxRecords:                       10000,
		IdleTimeBetweenReads:             1500 * time.Millisecond,
		ShardSyncInterval:                60 * time.Second,
		ParentShardPollInterval:          10 * time.Second,
		MaxLeasesToStealAtOneTime:        1,
		CleanupLeasesUponShardCompletion: true,
		RetrievalMode:                    FanOut,
		ConsumerName:                     "app",
		GracefulLeaseHandoffTimeout:      30 * time.Second,
		ClientVersion:                    ClientVersion3x,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}

func TestLoadKeys(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		check func(c *Config) any // returns the field under test
		want  any
	}{
		{"executableName is split on runs of spaces, with no shell", "executableName=  node  app.js '$HOME' a\tb ",
			func(c *Config) any { return c.Executable }, []string{"node", "app.js", "'$HOME'", "a\tb"}},
		{"tableName names the lease table", "tableName=leases", func(c *Config) any { return c.TableName }, "leases"},
		{"streamArn sets the stream name from the ARN and wins over streamName",
			"streamArn=arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
			func(c *Config) any { return [2]string{c.StreamARN, c.StreamName} },
			[2]string{"arn:aws:kinesis:eu-west-1:123456789012:stream/orders", "orders"}},
		{"streamArn wins whatever the key order",
			"streamArn=arn:aws:kinesis:eu-west-1:123456789012:stream/orders\nstreamName=other",
			func(c *Config) any { return c.StreamName }, "orders"},
		{"regionName", "regionName=eu-west-1", func(c *Config) any { return c.Region }, "eu-west-1"},
		{"kinesisEndpoint keeps its scheme", "kinesisEndpoint=http://127.0.0.1:4567",
			func(c *Config) any { return c.KinesisEndpoint }, "http://127.0.0.1:4567"},
		{"an endpoint without a scheme gets https, as in KCL", "dynamoDBEndpoint=dynamodb.eu-west-1.amazonaws.com",
			func(c *Config) any { return c.DynamoDBEndpoint }, "https://dynamodb.eu-west-1.amazonaws.com"},
		{"workerId", "workerId=w1", func(c *Config) any { return c.WorkerID }, "w1"},
		{"workerId defaults to empty for the host to generate", "", func(c *Config) any { return c.WorkerID }, ""},
		{"initialPositionInStream TRIM_HORIZON", "initialPositionInStream=TRIM_HORIZON",
			func(c *Config) any { return c.InitialPosition }, TrimHorizon},
		{"initialPositionInStream LATEST", "initialPositionInStream=LATEST",
			func(c *Config) any { return c.InitialPosition }, Latest},
		{"initialPositionInStream ignores case", "initialPositionInStream=trim_horizon",
			func(c *Config) any { return c.InitialPosition }, TrimHorizon},
		{"initialPositionInStreamExtended is AT_TIMESTAMP in epoch seconds", "initialPositionInStreamExtended=1700000000",
			func(c *Config) any {
				return fmt.Sprint(c.InitialPosition, " ", c.InitialTimestamp.Format(time.RFC3339))
			},
			"AT_TIMESTAMP 2023-11-14T22:13:20Z"},
		{"initialPositionInStreamExtended wins over initialPositionInStream in either order",
			"initialPositionInStreamExtended=1700000000\ninitialPositionInStream=TRIM_HORIZON",
			func(c *Config) any { return c.InitialPosition }, AtTimestamp},
		{"failoverTimeMillis", "failoverTimeMillis=20000", func(c *Config) any { return c.FailoverTime }, 20 * time.Second},
		{"failoverTimeMillis 0 means the default", "failoverTimeMillis=0", func(c *Config) any { return c.FailoverTime }, 10 * time.Second},
		{"maxRecords", "maxRecords=500", func(c *Config) any { return c.MaxRecords }, 500},
		{"maxRecords 0 means the default", "maxRecords=0", func(c *Config) any { return c.MaxRecords }, 10000},
		{"idleTimeBetweenReadsInMillis", "idleTimeBetweenReadsInMillis=250",
			func(c *Config) any { return c.IdleTimeBetweenReads }, 250 * time.Millisecond},
		{"shardSyncIntervalMillis", "shardSyncIntervalMillis=5000", func(c *Config) any { return c.ShardSyncInterval }, 5 * time.Second},
		{"parentShardPollIntervalMillis", "parentShardPollIntervalMillis=500",
			func(c *Config) any { return c.ParentShardPollInterval }, 500 * time.Millisecond},
		{"maxLeasesForWorker", "maxLeasesForWorker=7", func(c *Config) any { return c.MaxLeasesForWorker }, 7},
		{"maxLeasesForWorker 0 means unlimited", "maxLeasesForWorker=0", func(c *Config) any { return c.MaxLeasesForWorker }, 0},
		{"maxLeasesToStealAtOneTime", "maxLeasesToStealAtOneTime=3", func(c *Config) any { return c.MaxLeasesToStealAtOneTime }, 3},
		{"maxLeasesToStealAtOneTime 0 means the default", "maxLeasesToStealAtOneTime=0",
			func(c *Config) any { return c.MaxLeasesToStealAtOneTime }, 1},
		{"cleanupLeasesUponShardCompletion true", "cleanupLeasesUponShardCompletion=true",
			func(c *Config) any { return c.CleanupLeasesUponShardCompletion }, true},
		{"cleanupLeasesUponShardCompletion false means unset, as in KCL", "cleanupLeasesUponShardCompletion=false",
			func(c *Config) any { return c.CleanupLeasesUponShardCompletion }, true},
		{"callProcessRecordsEvenForEmptyRecordList true", "callProcessRecordsEvenForEmptyRecordList=TRUE",
			func(c *Config) any { return c.CallProcessRecordsEvenForEmptyRecordList }, true},
		{"booleans accept what Java's BeanUtils accepts", "callProcessRecordsEvenForEmptyRecordList=yes",
			func(c *Config) any { return c.CallProcessRecordsEvenForEmptyRecordList }, true},
		{"retrievalMode FANOUT", "retrievalMode=FANOUT", func(c *Config) any { return c.RetrievalMode }, FanOut},
		{"retrievalMode POLLING", "retrievalMode=POLLING", func(c *Config) any { return c.RetrievalMode }, Polling},
		{"retrievalMode DEFAULT without a polling key is fan-out", "retrievalMode=DEFAULT",
			func(c *Config) any { return c.RetrievalMode }, FanOut},
		{"retrievalMode DEFAULT with maxRecords set is polling", "retrievalMode=DEFAULT\nmaxRecords=100",
			func(c *Config) any { return c.RetrievalMode }, Polling},
		{"an absent retrievalMode with idleTimeBetweenReadsInMillis set is polling", "idleTimeBetweenReadsInMillis=100",
			func(c *Config) any { return c.RetrievalMode }, Polling},
		{"retryGetRecordsInSeconds is a polling key", "retryGetRecordsInSeconds=5",
			func(c *Config) any { return c.RetrievalMode }, Polling},
		{"maxGetRecordsThreadPool is a polling key", "maxGetRecordsThreadPool=2",
			func(c *Config) any { return c.RetrievalMode }, Polling},
		{"a polling key set to 0 is unset and leaves fan-out", "maxRecords=0\nidleTimeBetweenReadsInMillis=0",
			func(c *Config) any { return c.RetrievalMode }, FanOut},
		{"FANOUT wins over polling keys", "retrievalMode=FANOUT\nmaxRecords=100",
			func(c *Config) any { return c.RetrievalMode }, FanOut},
		{"consumerName", "consumerName=c1", func(c *Config) any { return c.ConsumerName }, "c1"},
		{"consumerArn leaves consumerName empty",
			"consumerArn=arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c1:1700000000",
			func(c *Config) any { return [2]string{c.ConsumerARN, c.ConsumerName} },
			[2]string{"arn:aws:kinesis:us-east-1:123456789012:stream/s/consumer/c1:1700000000", ""}},
		{"polling leaves consumerName empty", "retrievalMode=POLLING", func(c *Config) any { return c.ConsumerName }, ""},
		{"processingLanguage is kept though ignored", "processingLanguage=python/3.12",
			func(c *Config) any { return c.ProcessingLanguage }, "python/3.12"},
		{"maxActiveThreads is kept though ignored", "maxActiveThreads=8", func(c *Config) any { return c.MaxActiveThreads }, 8},
		{"timeoutInSeconds", "timeoutInSeconds=30", func(c *Config) any { return c.Timeout }, 30 * time.Second},
		{"timeoutInSeconds 0 means no limit", "timeoutInSeconds=0", func(c *Config) any { return c.Timeout }, time.Duration(0)},
		{"shutdownGraceMillis", "shutdownGraceMillis=15000", func(c *Config) any { return c.ShutdownGrace }, 15 * time.Second},
		{"shutdownGraceMillis 0 is unset for the host to default", "shutdownGraceMillis=0",
			func(c *Config) any { return c.ShutdownGrace }, time.Duration(0)},
		{"gracefulLeaseHandoffTimeoutMillis", "gracefulLeaseHandoffTimeoutMillis=5000",
			func(c *Config) any { return c.GracefulLeaseHandoffTimeout }, 5 * time.Second},
		{"kclCoordination", "kclCoordination=Fleet", func(c *Config) any { return c.Coordination }, "fleet"},
		{"kclCoordination kcl", "kclCoordination=kcl", func(c *Config) any { return c.Coordination }, "kcl"},
		{"a fleet with Java 2.x workers means KCL-compatible coordination", "clientVersionConfig=CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
			func(c *Config) any { return c.Coordination }, "kcl"},
		{"kclCoordination wins over clientVersionConfig", "clientVersionConfig=CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X\nkclCoordination=auto",
			func(c *Config) any { return c.Coordination }, "auto"},
		{"kclFleetFailoverTimeMillis", "kclFleetFailoverTimeMillis=3000", func(c *Config) any { return c.FleetFailoverTime }, 3 * time.Second},
		{"kclMetricsAddress", "kclMetricsAddress=0.0.0.0:9090", func(c *Config) any { return c.MetricsAddress }, "0.0.0.0:9090"},
		{"kclMetricsAddress with only a port", "kclMetricsAddress=:9090", func(c *Config) any { return c.MetricsAddress }, ":9090"},
		{"clientVersionConfig COMPATIBLE_WITH_2X", "clientVersionConfig=CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X",
			func(c *Config) any { return c.ClientVersion }, ClientVersionCompatibleWith2x},
		{"numbers may have surrounding spaces", "maxRecords =  42  ", func(c *Config) any { return c.MaxRecords }, 42},
		{"the last of duplicate keys wins, as in Java", "maxRecords=1\nmaxRecords=2", func(c *Config) any { return c.MaxRecords }, 2},
		{"only the last of duplicate keys is validated", "maxRecords=ten\nmaxRecords=2", func(c *Config) any { return c.MaxRecords }, 2},
		{"AwsCredentialsProvider is matched without regard to case", "AWSCredentialsProvider=EnvironmentVariableCredentialsProvider",
			func(c *Config) any { return c.Credentials }, []CredentialsProvider{{Kind: CredentialsEnvironment}}},
		{"AwsCredentialsProviderDynamoDB", "AwsCredentialsProviderDynamoDB=InstanceProfileCredentialsProvider",
			func(c *Config) any { return c.DynamoDBCredentials }, []CredentialsProvider{{Kind: CredentialsInstanceProfile}}},
		{"AwsCredentialsProviderCloudWatch", "awscredentialsproviderCloudWatch=AnonymousCredentialsProvider",
			func(c *Config) any { return c.CloudWatchCredentials }, []CredentialsProvider{{Kind: CredentialsAnonymous}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, base+tt.extra)
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestLoadCredentials(t *testing.T) {
	tests := []struct {
		name  string
		value string
		want  []CredentialsProvider
	}{
		{"the default chain", "DefaultCredentialsProvider", []CredentialsProvider{{Kind: CredentialsDefault}}},
		{"the SDK v1 default chain", "DefaultAWSCredentialsProviderChain", []CredentialsProvider{{Kind: CredentialsDefault}}},
		{"a fully qualified class name", "software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider",
			[]CredentialsProvider{{Kind: CredentialsDefault}}},
		{"a profile by name", "ProfileCredentialsProvider|dev", []CredentialsProvider{{Kind: CredentialsProfile, Args: []string{"dev"}}}},
		{"the default profile", "ProfileCredentialsProvider", []CredentialsProvider{{Kind: CredentialsProfile}}},
		{"environment variables", "EnvironmentVariableCredentialsProvider", []CredentialsProvider{{Kind: CredentialsEnvironment}}},
		{"system properties (v1 name)", "SystemPropertiesCredentialsProvider", []CredentialsProvider{{Kind: CredentialsSystemProperty}}},
		{"system properties", "SystemPropertyCredentialsProvider", []CredentialsProvider{{Kind: CredentialsSystemProperty}}},
		{"the instance profile", "InstanceProfileCredentialsProvider", []CredentialsProvider{{Kind: CredentialsInstanceProfile}}},
		{"container credentials", "ContainerCredentialsProvider", []CredentialsProvider{{Kind: CredentialsContainer}}},
		{"v1 container credentials", "com.amazonaws.auth.EC2ContainerCredentialsProviderWrapper",
			[]CredentialsProvider{{Kind: CredentialsContainer}}},
		{"web identity", "WebIdentityTokenFileCredentialsProvider", []CredentialsProvider{{Kind: CredentialsWebIdentity}}},
		{"assume role with a role and session", "StsAssumeRoleCredentialsProvider|arn:aws:iam::123456789012:role/r|sess",
			[]CredentialsProvider{{Kind: CredentialsAssumeRole, Args: []string{"arn:aws:iam::123456789012:role/r", "sess"}}}},
		{"assume role with nested properties", "KclStsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r|s|externalId=x|endpointRegion=us-east-1",
			[]CredentialsProvider{{Kind: CredentialsAssumeRole, Args: []string{"arn:aws:iam::1:role/r", "s"},
				Properties: map[string]string{"externalId": "x", "endpointRegion": "us-east-1"}}}},
		{"a comma-separated chain, in order, with spaces", " EnvironmentVariableCredentialsProvider , ProfileCredentialsProvider|p ,",
			[]CredentialsProvider{{Kind: CredentialsEnvironment}, {Kind: CredentialsProfile, Args: []string{"p"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := mustLoad(t, base+"AwsCredentialsProvider="+tt.value)
			if !reflect.DeepEqual(c.Credentials, tt.want) {
				t.Errorf("got %+v, want %+v", c.Credentials, tt.want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		wants []string // each a whole error line
	}{
		{"a missing executableName", "applicationName=a\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider",
			[]string{"properties: missing required key executableName"}},
		{"an empty executableName", "executableName=   \napplicationName=a\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider",
			[]string{`properties: line 1: executableName = "": empty command`}},
		{"a missing applicationName", "executableName=x\nstreamName=s\nAwsCredentialsProvider=DefaultCredentialsProvider",
			[]string{"properties: missing required key applicationName"}},
		{"a missing stream", "executableName=x\napplicationName=a\nAwsCredentialsProvider=DefaultCredentialsProvider",
			[]string{"properties: missing required key streamName (or streamArn)"}},
		{"a missing credentials provider", "executableName=x\napplicationName=a\nstreamName=s",
			[]string{"properties: missing required key AwsCredentialsProvider"}},
		{"every missing key at once", "# nothing\n", []string{
			"properties: missing required key executableName",
			"properties: missing required key applicationName",
			"properties: missing required key streamName (or streamArn)",
			"properties: missing required key AwsCredentialsProvider"}},
		{"a kclMetricsAddress without a port", base + "kclMetricsAddress=localhost", []string{
			`properties: line 5: kclMetricsAddress = "localhost": not a host:port address, such as 0.0.0.0:9090 or 127.0.0.1:9090`}},
		{"an unknown credentials provider lists the known ones", base + "AwsCredentialsProvider=MagicProvider", []string{
			`properties: line 5: AwsCredentialsProvider = "MagicProvider": unknown credentials provider "MagicProvider" (known: ` +
				"DefaultCredentialsProvider, ProfileCredentialsProvider, EnvironmentVariableCredentialsProvider, " +
				"SystemPropertyCredentialsProvider, InstanceProfileCredentialsProvider, ContainerCredentialsProvider, " +
				"WebIdentityTokenFileCredentialsProvider, StsAssumeRoleCredentialsProvider, AnonymousCredentialsProvider)"}},
		{"an empty credentials provider", base + "AwsCredentialsProvider= ,", []string{
			`properties: line 5: AwsCredentialsProvider = ",": no credentials provider (known: ` +
				"DefaultCredentialsProvider, ProfileCredentialsProvider, EnvironmentVariableCredentialsProvider, " +
				"SystemPropertyCredentialsProvider, InstanceProfileCredentialsProvider, ContainerCredentialsProvider, " +
				"WebIdentityTokenFileCredentialsProvider, StsAssumeRoleCredentialsProvider, AnonymousCredentialsProvider)"}},
		{"a profile provider with two arguments", base + "AwsCredentialsProvider=ProfileCredentialsProvider|a|b",
			[]string{`properties: line 5: AwsCredentialsProvider = "ProfileCredentialsProvider|a|b": ProfileCredentialsProvider takes at most one argument, the profile name`}},
		{"a profile provider with an empty name", base + "AwsCredentialsProvider=ProfileCredentialsProvider|",
			[]string{`properties: line 5: AwsCredentialsProvider = "ProfileCredentialsProvider|": ProfileCredentialsProvider: empty profile name`}},
		{"assume role without a session name", base + "AwsCredentialsProvider=StsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r",
			[]string{`properties: line 5: AwsCredentialsProvider = "StsAssumeRoleCredentialsProvider|arn:aws:iam::1:role/r": StsAssumeRoleCredentialsProvider needs |roleArn|sessionName, then optional |key=value properties`}},
		{"an argument to a provider that takes none", base + "AwsCredentialsProvider=DefaultCredentialsProvider|x",
			[]string{`properties: line 5: AwsCredentialsProvider = "DefaultCredentialsProvider|x": DefaultCredentialsProvider takes no arguments`}},
		{"a malformed number names key, line and value", base + "failoverTimeMillis = ten",
			[]string{`properties: line 5: failoverTimeMillis = "ten": not a whole number of milliseconds`}},
		{"a fractional number", base + "maxRecords=1.5", []string{`properties: line 5: maxRecords = "1.5": not a whole number`}},
		{"a negative number", base + "maxLeasesForWorker=-1", []string{`properties: line 5: maxLeasesForWorker = "-1": must not be negative`}},
		{"a number beyond int64", base + "shardSyncIntervalMillis=99999999999999999999",
			[]string{`properties: line 5: shardSyncIntervalMillis = "99999999999999999999": too large`}},
		{"milliseconds beyond a Duration", base + "shardSyncIntervalMillis=9223372036854775",
			[]string{`properties: line 5: shardSyncIntervalMillis = "9223372036854775": too large`}},
		{"seconds beyond a Duration", base + "timeoutInSeconds=9223372036854",
			[]string{`properties: line 5: timeoutInSeconds = "9223372036854": too large`}},
		{"a count beyond int32", base + "maxLeasesForWorker=2147483648",
			[]string{`properties: line 5: maxLeasesForWorker = "2147483648": too large`}},
		{"maxRecords above the GetRecords limit", base + "maxRecords=10001",
			[]string{`properties: line 5: maxRecords = "10001": at most 10000 (the GetRecords limit)`}},
		{"a seconds key with text", base + "timeoutInSeconds=1m", []string{`properties: line 5: timeoutInSeconds = "1m": not a whole number of seconds`}},
		{"a malformed boolean", base + "callProcessRecordsEvenForEmptyRecordList=maybe",
			[]string{`properties: line 5: callProcessRecordsEvenForEmptyRecordList = "maybe": not a boolean (true or false)`}},
		{"a malformed boolean that KCL would ignore when false", base + "cleanupLeasesUponShardCompletion=maybe",
			[]string{`properties: line 5: cleanupLeasesUponShardCompletion = "maybe": not a boolean (true or false)`}},
		{"an unknown retrieval mode lists the allowed ones", base + "retrievalMode=EFO",
			[]string{`properties: line 5: retrievalMode = "EFO": unknown retrieval mode (allowed: FANOUT, POLLING, DEFAULT)`}},
		{"an unknown initial position lists the allowed ones", base + "initialPositionInStream=EARLIEST",
			[]string{`properties: line 5: initialPositionInStream = "EARLIEST": unknown initial position (allowed: LATEST, TRIM_HORIZON)`}},
		{"AT_TIMESTAMP without a time", base + "initialPositionInStream=AT_TIMESTAMP",
			[]string{`properties: line 5: initialPositionInStream = "AT_TIMESTAMP": AT_TIMESTAMP needs a time: set initialPositionInStreamExtended (epoch seconds) instead`}},
		{"a malformed initial position is reported even when the extended one wins",
			base + "initialPositionInStreamExtended=1\ninitialPositionInStream=SOON",
			[]string{`properties: line 6: initialPositionInStream = "SOON": unknown initial position (allowed: LATEST, TRIM_HORIZON)`}},
		{"a malformed timestamp", base + "initialPositionInStreamExtended=2024-01-01",
			[]string{`properties: line 5: initialPositionInStreamExtended = "2024-01-01": not a time in whole seconds since 1970-01-01 UTC`}},
		{"an unknown coordination", base + "kclCoordination=leader",
			[]string{`properties: line 5: kclCoordination = "leader": unknown coordination (allowed: auto, fleet, kcl)`}},
		{"an unknown client version", base + "clientVersionConfig=2X",
			[]string{`properties: line 5: clientVersionConfig = "2X": unknown client version (allowed: CLIENT_VERSION_CONFIG_3X, CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X)`}},
		{"a stream ARN of another service", base + "streamArn=arn:aws:sqs:us-east-1:123456789012:stream/s",
			[]string{`properties: line 5: streamArn = "arn:aws:sqs:us-east-1:123456789012:stream/s": not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)`}},
		{"a stream ARN without a name", base + "streamArn=arn:aws:kinesis:us-east-1:123456789012:stream/",
			[]string{`properties: line 5: streamArn = "arn:aws:kinesis:us-east-1:123456789012:stream/": not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)`}},
		{"a consumer ARN that is a stream ARN", base + "consumerArn=arn:aws:kinesis:us-east-1:123456789012:stream/s",
			[]string{`properties: line 5: consumerArn = "arn:aws:kinesis:us-east-1:123456789012:stream/s": not a Kinesis stream consumer ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:TIMESTAMP)`}},
		{"a malformed escape is a syntax error with its line", base + `workerId=\u12`,
			[]string{`properties: line 5: malformed \uXXXX escape`}},
		{"a file of only malformed escapes also reports the missing keys", `\u`, []string{
			`properties: line 1: malformed \uXXXX escape`,
			"properties: missing required key executableName",
			"properties: missing required key applicationName",
			"properties: missing required key streamName (or streamArn)",
			"properties: missing required key AwsCredentialsProvider"}},
		{"several errors are reported together, in file order", "executableName=x\nmaxRecords=many\nretrievalMode=FAST\nstreamName=s\nAwsCredentialsProvider=Nope|1", []string{
			`properties: line 2: maxRecords = "many": not a whole number`,
			`properties: line 3: retrievalMode = "FAST": unknown retrieval mode (allowed: FANOUT, POLLING, DEFAULT)`,
			`properties: line 5: AwsCredentialsProvider = "Nope|1": unknown credentials provider "Nope" (known: ` +
				"DefaultCredentialsProvider, ProfileCredentialsProvider, EnvironmentVariableCredentialsProvider, " +
				"SystemPropertyCredentialsProvider, InstanceProfileCredentialsProvider, ContainerCredentialsProvider, " +
				"WebIdentityTokenFileCredentialsProvider, StsAssumeRoleCredentialsProvider, AnonymousCredentialsProvider)",
			"properties: missing required key applicationName"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("got %+v, want an error", c)
			}
			if c != nil {
				t.Errorf("got a config with an error: %+v", c)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tt.wants) {
				t.Errorf("error\n got %q\nwant %q", got, tt.wants)
			}
		})
	}
}

func TestLoadErrorTypes(t *testing.T) {
	_, _, err := Load(strings.NewReader("maxRecords = ten\nworkerId=\\u"))
	var ve *ValueError
	if !errors.As(err, &ve) || *ve != (ValueError{Key: "maxRecords", Line: 1, Value: "ten", Reason: "not a whole number"}) {
		t.Errorf("ValueError: got %+v from %v", ve, err)
	}
	var me *MissingKeyError
	if !errors.As(err, &me) || me.Key != "executableName" {
		t.Errorf("MissingKeyError: got %+v from %v", me, err)
	}
	var se *SyntaxError
	if !errors.As(err, &se) || se.Line != 2 {
		t.Errorf("SyntaxError: got %+v from %v", se, err)
	}
}

func TestLoadWarnings(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  []string
	}{
		{"an unknown key is reported by name and line", "metricsLevel=NONE",
			[]string{"properties: line 5: metricsLevel: unknown key, ignored"}},
		{"a key in the wrong case suggests the right one", "StreamName=x",
			[]string{"properties: line 5: StreamName: unknown key, ignored (did you mean streamName?)"}},
		{"cleanupLeasesUponShardCompletion=false is ignored, as in KCL", "cleanupLeasesUponShardCompletion=false",
			[]string{"properties: line 5: cleanupLeasesUponShardCompletion: false is ignored, as in KCL: leases of finished shards are cleaned up"}},
		{"initialPositionInStream is overridden by initialPositionInStreamExtended",
			"initialPositionInStream=LATEST\ninitialPositionInStreamExtended=1",
			[]string{"properties: line 5: initialPositionInStream: ignored: initialPositionInStreamExtended sets the initial position to AT_TIMESTAMP"}},
		{"keys KCL knows and kcl ignores are not warned about", "processingLanguage=node\nmaxActiveThreads=4\nretryGetRecordsInSeconds=1\nmaxGetRecordsThreadPool=1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, ws := mustLoad(t, base+tt.extra)
			var got []string
			for _, w := range ws {
				got = append(got, w.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadWarningsWithErrors(t *testing.T) {
	_, ws, err := Load(strings.NewReader("colour=blue"))
	if err == nil || len(ws) != 1 || ws[0].Key != "colour" || ws[0].Line != 1 {
		t.Errorf("got warnings %v and error %v, want one warning and an error", ws, err)
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		name string
		got  fmt.Stringer
		want string
	}{
		{"Latest", Latest, "LATEST"},
		{"TrimHorizon", TrimHorizon, "TRIM_HORIZON"},
		{"AtTimestamp", AtTimestamp, "AT_TIMESTAMP"},
		{"an invalid InitialPosition", InitialPosition(0), "InitialPosition(0)"},
		{"FanOut", FanOut, "FANOUT"},
		{"Polling", Polling, "POLLING"},
		{"an invalid RetrievalMode", RetrievalMode(9), "RetrievalMode(9)"},
		{"ClientVersion3x", ClientVersion3x, "CLIENT_VERSION_CONFIG_3X"},
		{"ClientVersionCompatibleWith2x", ClientVersionCompatibleWith2x, "CLIENT_VERSION_CONFIG_COMPATIBLE_WITH_2X"},
		{"an invalid ClientVersion", ClientVersion(0), "ClientVersion(0)"},
		{"CredentialsProfile", CredentialsProfile, "ProfileCredentialsProvider"},
		{"an invalid CredentialsKind", CredentialsKind(0), "CredentialsKind(0)"},
		{"a CredentialsKind past the last", CredentialsAnonymous + 1, "CredentialsKind(10)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got.String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	if _, _, err := LoadFile(filepath.Join(t.TempDir(), "absent.properties")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: got %v, want os.ErrNotExist", err)
	}
}

// describe renders a Config and its warnings one field a line, for the golden file.
func describe(c *Config, ws []Warning) string {
	var b strings.Builder
	v := reflect.ValueOf(*c)
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		val := fmt.Sprint(f.Interface())
		if f.Type() == reflect.TypeOf(time.Time{}) && f.Interface().(time.Time).IsZero() {
			val = "zero"
		}
		fmt.Fprintf(&b, "%s: %s\n", v.Type().Field(i).Name, val)
	}
	for _, w := range ws {
		fmt.Fprintf(&b, "warning: %s\n", w)
	}
	return b.String()
}

func TestGoldenSample(t *testing.T) {
	c, ws, err := LoadFile("testdata/sample.properties")
	if err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	got := describe(c, ws)
	const golden = "testdata/sample.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
