package awsconf

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
	"github.com/kclgo/kcl/testkit/testenv"
)

// TestLoadReachesTheEmulators builds the clients the way the multilang
// command does and calls the emulators: Kinesis over plain http, over TLS
// with a private certificate authority given in AWS_CA_BUNDLE (the SDK's
// variable, which Load must keep working), and DynamoDB.
func TestLoadReachesTheEmulators(t *testing.T) {
	testenv.Require(t)
	plain, ddb := testenv.KinesisEndpoint(t), testenv.DynamoDBEndpoint(t)
	tlsEndpoint, ca := testenv.KinesisTLSEndpoint(t), os.Getenv(testenv.EnvKinesisCAFile)

	isolate(t)
	t.Setenv(envAccessKeyID, "test")
	t.Setenv(envSecretAccessKey, "test")
	stream := testenv.CreateStream(t, testenv.Kinesis(t), 1)
	env := []properties.CredentialsProvider{{Kind: properties.CredentialsEnvironment}}

	t.Run("kinesis over http and dynamodb", func(t *testing.T) {
		confs, err := Load(t.Context(), &properties.Config{
			Region: testenv.Region, KinesisEndpoint: plain, DynamoDBEndpoint: ddb, Credentials: env,
		})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if _, err := kinesis.NewFromConfig(confs.Kinesis).DescribeStreamSummary(t.Context(),
			&kinesis.DescribeStreamSummaryInput{StreamName: &stream}); err != nil {
			t.Errorf("DescribeStreamSummary over http: %v", err)
		}
		if _, err := dynamodb.NewFromConfig(confs.DynamoDB).ListTables(t.Context(), &dynamodb.ListTablesInput{}); err != nil {
			t.Errorf("ListTables: %v", err)
		}
	})

	t.Run("kinesis over tls with AWS_CA_BUNDLE", func(t *testing.T) {
		if ca == "" {
			t.Skipf("%s is not set: the TLS port's certificate is not available", testenv.EnvKinesisCAFile)
		}
		t.Setenv("AWS_CA_BUNDLE", ca)
		confs, err := Load(t.Context(), &properties.Config{
			Region: testenv.Region, KinesisEndpoint: tlsEndpoint, Credentials: env,
		})
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if _, err := kinesis.NewFromConfig(confs.Kinesis).DescribeStreamSummary(t.Context(),
			&kinesis.DescribeStreamSummaryInput{StreamName: &stream}); err != nil {
			t.Errorf("DescribeStreamSummary over TLS with AWS_CA_BUNDLE: %v", err)
		}
	})
}
