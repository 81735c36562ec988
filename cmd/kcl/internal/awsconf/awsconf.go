// Package awsconf builds the AWS SDK configuration of the kcl multilang host
// from a properties file: the region, the Kinesis and DynamoDB endpoints and
// the credentials chains that AwsCredentialsProvider and
// AwsCredentialsProviderDynamoDB name.
//
// Everything starts from config.LoadDefaultConfig, so the SDK's environment
// (AWS_REGION, AWS_PROFILE, AWS_CA_BUNDLE, AWS_ENDPOINT_URL_*, the shared
// config files, ...) works as it does for any Go program; the properties
// file then overrides the region and the endpoints. The HTTP client is the
// SDK's own, which is what keeps AWS_CA_BUNDLE working: a custom
// certificate authority for a private Kinesis endpoint is given there.
//
// Each Java provider maps onto an aws-sdk-go-v2 provider (see
// properties.CredentialsKind). A provider that cannot work in this process,
// such as SystemPropertyCredentialsProvider or
// EnvironmentVariableCredentialsProvider without its variables, fails when
// asked for credentials, so that a chain moves on to its next provider as
// Java's does; a chain in which no provider can work is an error of Load.
package awsconf

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
)

// Configs are the SDK configurations of the host's two clients.
type Configs struct {
	// Kinesis is for kinesis.NewFromConfig: regionName, kinesisEndpoint and
	// AwsCredentialsProvider.
	Kinesis aws.Config
	// DynamoDB is for dynamodb.NewFromConfig: regionName, dynamoDBEndpoint
	// and AwsCredentialsProviderDynamoDB, else AwsCredentialsProvider.
	DynamoDB aws.Config
}

// Load builds the configurations of p. It reads the environment and the
// shared config files but calls no AWS API: credentials are fetched on the
// first request. Its errors are configuration errors (no region, a bad
// endpoint, a profile that does not exist when it is the only provider, a
// chain none of whose providers can work here); they are prefixed
// "awsconf:" and fit on one line.
func Load(ctx context.Context, p *properties.Config) (Configs, error) {
	var opts []func(*config.LoadOptions) error
	if p.Region != "" {
		opts = append(opts, config.WithRegion(p.Region))
	}
	base, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return Configs{}, fmt.Errorf("awsconf: loading the SDK configuration: %w", err)
	}
	if base.Region == "" {
		return Configs{}, errors.New("awsconf: no region: set regionName in the properties file, or AWS_REGION")
	}
	kinesisEndpoint, err := normalizeEndpoint(p.KinesisEndpoint)
	if err != nil {
		return Configs{}, fmt.Errorf("awsconf: kinesisEndpoint: %w", err)
	}
	dynamoDBEndpoint, err := normalizeEndpoint(p.DynamoDBEndpoint)
	if err != nil {
		return Configs{}, fmt.Errorf("awsconf: dynamoDBEndpoint: %w", err)
	}

	creds, err := credentialsFor(ctx, base, p.Credentials)
	if err != nil {
		return Configs{}, fmt.Errorf("awsconf: AwsCredentialsProvider: %w", err)
	}
	ddbCreds := creds
	if p.DynamoDBCredentials != nil {
		if ddbCreds, err = credentialsFor(ctx, base, p.DynamoDBCredentials); err != nil {
			return Configs{}, fmt.Errorf("awsconf: AwsCredentialsProviderDynamoDB: %w", err)
		}
	}

	k := base.Copy()
	k.Credentials = creds
	if kinesisEndpoint != "" {
		k.BaseEndpoint = aws.String(kinesisEndpoint)
	}
	d := base.Copy()
	d.Credentials = ddbCreds
	if dynamoDBEndpoint != "" {
		d.BaseEndpoint = aws.String(dynamoDBEndpoint)
	}
	return Configs{Kinesis: k, DynamoDB: d}, nil
}

// normalizeEndpoint returns endpoint as a URL for BaseEndpoint: "" stays ""
// (the SDK's endpoint), a bare host[:port], as KCL users write it, gets
// https:// (KCL does the same), and anything else must be an http or https
// URL with a host.
func normalizeEndpoint(endpoint string) (string, error) {
	endpoint = strings.TrimSpace(endpoint)
	if endpoint == "" {
		return "", nil
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL", endpoint)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("%q: scheme must be http or https", endpoint)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "", fmt.Errorf("%q has no host", endpoint)
	}
	return endpoint, nil
}
