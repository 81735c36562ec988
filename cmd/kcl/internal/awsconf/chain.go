package awsconf

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// A link is one provider of a chain, with the Java class name its errors
// carry.
type link struct {
	name     string
	provider aws.CredentialsProvider
}

// chain is a credentials provider that tries its links in order and returns
// the credentials of the first that yields some, as the Java SDK's
// AwsCredentialsProviderChain does for a comma-separated
// AwsCredentialsProvider value. Unlike the Java chain it does not pin the
// provider that succeeded last: callers wrap it in an aws.CredentialsCache,
// so it runs only when the cached credentials expire, and trying the
// earlier links again then is what lets a chain recover from an outage of
// one source.
type chain []link

var _ aws.CredentialsProvider = chain(nil)

// Retrieve returns the credentials of the first link that has keys. When
// every link fails, the error names each link and its failure; it stops
// early when ctx ends.
func (c chain) Retrieve(ctx context.Context) (aws.Credentials, error) {
	errs := make([]error, 0, len(c))
	for _, l := range c {
		creds, err := l.provider.Retrieve(ctx)
		if err == nil && creds.HasKeys() {
			return creds, nil
		}
		if err == nil {
			err = errors.New("no access key")
		}
		errs = append(errs, fmt.Errorf("%s: %w", l.name, err))
		if ctx.Err() != nil {
			break
		}
	}
	return aws.Credentials{}, &chainError{errs: errs}
}

// chainError reports the failure of every link of a chain, on one line.
type chainError struct {
	errs []error
}

func (e *chainError) Error() string {
	var b strings.Builder
	b.WriteString("awsconf: no provider of the chain gave credentials: ")
	for i, err := range e.errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (e *chainError) Unwrap() []error { return e.errs }

// unavailable is a provider that cannot work in this process or
// environment (a missing variable, a Java-only source). Retrieve returns
// its reason, so that a chain moves on to its next link, as Java's does.
type unavailable struct {
	err error
}

func (u unavailable) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{}, u.err
}
