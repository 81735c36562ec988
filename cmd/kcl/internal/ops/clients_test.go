package ops

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/testkit/testenv"
)

// isolate clears the SDK's environment and shared files; it returns the
// directory of the (empty) config files.
func isolate(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_REGION": "", "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "", "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_SESSION_TOKEN": "", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KINESIS": "", "AWS_ENDPOINT_URL_DYNAMODB": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	return dir
}

func TestAWSConfigMistakesAreUsageErrors(t *testing.T) {
	isolate(t)
	var u *UsageError
	if _, err := (&Env{}).AWSConfig(t.Context()); !errors.As(err, &u) {
		t.Errorf("no region: %v, want a usage error", err)
	}
	if _, err := (&Env{Region: "us-east-1", Profile: "nope"}).AWSConfig(t.Context()); !errors.As(err, &u) {
		t.Errorf("unknown profile: %v, want a usage error", err)
	}
	if _, err := (&Env{Region: "us-east-1", EndpointURL: "127.0.0.1:4567"}).Kinesis(t.Context()); !errors.As(err, &u) {
		t.Errorf("endpoint without a scheme: %v, want a usage error", err)
	}
}

// TestClientsFollowTheEndpointVariables reaches the emulators through the
// SDK's own variables (per service and global) and through --endpoint-url,
// which wins over them.
func TestClientsFollowTheEndpointVariables(t *testing.T) {
	testenv.Require(t)
	kin, ddb := testenv.KinesisEndpoint(t), testenv.DynamoDBEndpoint(t)
	isolate(t)
	t.Setenv("AWS_REGION", testenv.Region)
	ctx := t.Context()
	env := &Env{}

	reach := func(t *testing.T, e *Env) (kerr, derr error) {
		t.Helper()
		kc, err := e.Kinesis(ctx)
		if err != nil {
			t.Fatal(err)
		}
		dc, err := e.DynamoDB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		_, kerr = kc.ListStreams(ctx, &kinesis.ListStreamsInput{})
		_, derr = dc.ListTables(ctx, &dynamodb.ListTablesInput{})
		return kerr, derr
	}

	t.Run("AWS_ENDPOINT_URL_KINESIS and AWS_ENDPOINT_URL_DYNAMODB", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL_KINESIS", kin)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ddb)
		t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
		if kerr, derr := reach(t, env); kerr != nil || derr != nil {
			t.Errorf("Kinesis: %v; DynamoDB: %v", kerr, derr)
		}
	})
	t.Run("AWS_ENDPOINT_URL", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL", kin)
		if kerr, _ := reach(t, env); kerr != nil {
			t.Errorf("Kinesis: %v", kerr)
		}
	})
	t.Run("--endpoint-url wins over the variables", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
		_, derr := reach(t, &Env{EndpointURL: ddb})
		if derr != nil {
			t.Errorf("DynamoDB: %v", derr)
		}
	})
}
