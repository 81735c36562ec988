package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kclgo/kcl/testkit/kinesismock"
)

// Region is the region of every client this package builds.
const Region = "us-east-1"

// EFOMode picks the transport enhanced fan-out (SubscribeToShard) runs over.
type EFOMode int

const (
	// EFOH2C is HTTP/2 without TLS (prior knowledge) on kinesis-mock's plain port.
	EFOH2C EFOMode = iota + 1
	// EFOTLS is HTTP/2 over TLS (ALPN h2) on kinesis-mock's TLS port, as on AWS.
	EFOTLS
)

// EFOModes lists every EFOMode, for tests that run once per transport.
var EFOModes = []EFOMode{EFOH2C, EFOTLS}

func (m EFOMode) String() string {
	switch m {
	case EFOH2C:
		return "h2c"
	case EFOTLS:
		return "tls"
	}
	return fmt.Sprintf("EFOMode(%d)", int(m))
}

// AWSConfig returns a config for the emulators built field by field (static
// credentials, region us-east-1, a proxy-free HTTP/1.1 client, a retryer), so
// tests never depend on ~/.aws, AWS_* variables or config.LoadDefaultConfig.
// Endpoints are not part of it: set o.BaseEndpoint per client, or use
// Kinesis, KinesisEFO and DynamoDB.
//
// The retryer makes up to 8 attempts with backoff capped at 1 s and no retry
// quota, because kinesis-mock answers concurrent control-plane calls with
// LimitExceededException (a throttle code the SDK retries).
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	Require(t)
	return newConfig(&http.Client{Transport: newTransport()})
}

func newConfig(client aws.HTTPClient) aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIDKCLTEST", "kcl-test-secret", "")),
		HTTPClient:  client,
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = 8
				o.MaxBackoff = time.Second
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

// newTransport returns a transport for local endpoints: no proxy from the
// environment, bounded dials and header waits.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// Kinesis returns a client for kinesis-mock's plain endpoint over HTTP/1.1,
// for polling and control-plane calls. It skips or fails the test as Require
// does when the emulators are not configured.
func Kinesis(t testing.TB) *kinesis.Client {
	t.Helper()
	endpoint := KinesisEndpoint(t)
	return kinesis.NewFromConfig(AWSConfig(t), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// DynamoDB returns a client for DynamoDB Local. It skips or fails the test as
// Require does when the emulators are not configured.
func DynamoDB(t testing.TB) *dynamodb.Client {
	t.Helper()
	endpoint := DynamoDBEndpoint(t)
	return dynamodb.NewFromConfig(AWSConfig(t), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// KinesisEFO returns a client for enhanced fan-out against kinesis-mock over
// HTTP/2: h2c on the plain port or TLS on the TLS port, as mode says. With
// EFOTLS the certificate in KCL_KINESIS_CA_FILE is trusted; without that
// variable (openssl was missing when the emulators started) verification is
// skipped. The HTTP client is wrapped with kinesismock.SubscribeToShardAdapter, so
// SubscribeToShard behaves as on AWS. Every other call works too.
func KinesisEFO(t testing.TB, mode EFOMode) *kinesis.Client {
	t.Helper()
	tr := newTransport()
	var protocols http.Protocols
	var endpoint string
	switch mode {
	case EFOH2C:
		endpoint = KinesisEndpoint(t)
		protocols.SetUnencryptedHTTP2(true)
	case EFOTLS:
		endpoint = KinesisTLSEndpoint(t)
		protocols.SetHTTP2(true)
		cfg, err := tlsConfig()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		tr.TLSClientConfig = cfg
	default:
		t.Fatalf("testenv: unknown %v", mode)
	}
	tr.Protocols = &protocols
	client := kinesismock.SubscribeToShardAdapter(&http.Client{Transport: tr})
	return kinesis.NewFromConfig(newConfig(client), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

func tlsConfig() (*tls.Config, error) {
	file := os.Getenv(EnvKinesisCAFile)
	if file == "" {
		// kinesis-mock serves its bundled certificate, which has no SAN.
		return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // local emulator only
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", EnvKinesisCAFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s=%s holds no PEM certificate", EnvKinesisCAFile, file)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}
