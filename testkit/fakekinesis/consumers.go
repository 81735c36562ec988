package fakekinesis

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// RegisterStreamConsumer registers an enhanced fan-out consumer. It is
// ACTIVE at once (Kinesis takes seconds: tests of the wait use their own
// fakes). A name already registered on the stream is ResourceInUse.
func (f *Fake) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	return run(ctx, f, "RegisterStreamConsumer", in, func(in *kinesis.RegisterStreamConsumerInput) (*kinesis.RegisterStreamConsumerOutput, error) {
		s, err := f.lookup(nil, in.StreamARN)
		if err != nil {
			return nil, err
		}
		name := aws.ToString(in.ConsumerName)
		if name == "" {
			return nil, invalidArg("ConsumerName is required")
		}
		if _, ok := f.consumerByName(s.arn, name); ok {
			return nil, inUse("Consumer %s under stream %s already exists.", name, s.name)
		}
		now := time.Now()
		c := types.ConsumerDescription{
			ConsumerName:              aws.String(name),
			ConsumerARN:               aws.String(s.arn + "/consumer/" + name + ":" + strconv.FormatInt(now.Unix(), 10)),
			ConsumerStatus:            types.ConsumerStatusActive,
			ConsumerCreationTimestamp: aws.Time(now),
			StreamARN:                 aws.String(s.arn),
		}
		f.consumers[*c.ConsumerARN] = c
		return &kinesis.RegisterStreamConsumerOutput{Consumer: &types.Consumer{
			ConsumerName: c.ConsumerName, ConsumerARN: c.ConsumerARN, ConsumerStatus: c.ConsumerStatus,
			ConsumerCreationTimestamp: c.ConsumerCreationTimestamp,
		}}, nil
	})
}

// DescribeStreamConsumer describes a registered consumer, by ARN or by
// stream ARN and name; ResourceNotFound if there is none.
func (f *Fake) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	return run(ctx, f, "DescribeStreamConsumer", in, func(in *kinesis.DescribeStreamConsumerInput) (*kinesis.DescribeStreamConsumerOutput, error) {
		if arn := aws.ToString(in.ConsumerARN); arn != "" {
			c, ok := f.consumers[arn]
			if !ok {
				return nil, notFound("Consumer %s not found.", arn)
			}
			return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &c}, nil
		}
		s, err := f.lookup(nil, in.StreamARN)
		if err != nil {
			return nil, err
		}
		c, ok := f.consumerByName(s.arn, aws.ToString(in.ConsumerName))
		if !ok {
			return nil, notFound("Consumer %s under stream %s not found.", aws.ToString(in.ConsumerName), s.name)
		}
		return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &c}, nil
	})
}

// consumerByName finds a registered consumer. f.mu is held.
func (f *Fake) consumerByName(streamARN, name string) (types.ConsumerDescription, bool) {
	for _, c := range f.consumers {
		if aws.ToString(c.StreamARN) == streamARN && aws.ToString(c.ConsumerName) == name {
			return c, true
		}
	}
	return types.ConsumerDescription{}, false
}
