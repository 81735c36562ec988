package main

import (
	"errors"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// clients builds SDK clients for the local emulators, literally: the
// library never loads AWS configuration, and config.LoadDefaultConfig
// would trip over this machine's AWS_CA_BUNDLE.
func clients() (*kinesis.Client, *dynamodb.Client, error) {
	kEndpoint, dEndpoint := os.Getenv("KCL_KINESIS_ENDPOINT"), os.Getenv("KCL_DYNAMODB_ENDPOINT")
	if kEndpoint == "" || dEndpoint == "" {
		return nil, nil, errors.New(`KCL_KINESIS_ENDPOINT and KCL_DYNAMODB_ENDPOINT must be set: run "make demo", or start the emulators with "scripts/emulators.sh start" and eval "$(scripts/emulators.sh env)"`)
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("demo", "demo", ""),
		HTTPClient:  &http.Client{Timeout: 30 * time.Second},
	}
	kc := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(kEndpoint) })
	ddb := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(dEndpoint) })
	return kc, ddb, nil
}
