package awsconf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
)

// Environment variables the providers read, named as the SDKs name them.
const (
	envAccessKeyID        = "AWS_ACCESS_KEY_ID"
	envSecretAccessKey    = "AWS_SECRET_ACCESS_KEY"
	envSessionToken       = "AWS_SESSION_TOKEN"
	envContainerRelative  = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
	envContainerFull      = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
	envContainerToken     = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
	envContainerTokenFile = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
	envWebIdentityToken   = "AWS_WEB_IDENTITY_TOKEN_FILE"
	envRoleARN            = "AWS_ROLE_ARN"
	envRoleSessionName    = "AWS_ROLE_SESSION_NAME"
)

// ecsContainerHost is where ECS serves AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.
const ecsContainerHost = "http://169.254.170.2"

// errSystemProperty is the failure of SystemPropertyCredentialsProvider.
var errSystemProperty = errors.New("the Java system properties it reads do not exist for a Go process; use EnvironmentVariableCredentialsProvider")

// credentialsFor returns the provider for an AwsCredentialsProvider chain,
// cached with aws.CredentialsCache. It fails when a provider is misconfigured
// (an unknown AssumeRole property) or when no provider of the chain can work
// in this process.
func credentialsFor(ctx context.Context, base aws.Config, list []properties.CredentialsProvider) (aws.CredentialsProvider, error) {
	if len(list) == 0 {
		return nil, errors.New("no provider")
	}
	// Requests are signed or not when a client is built, so Anonymous cannot
	// be a fallback. First in a chain it always wins, as in Java, and the
	// providers after it are never asked.
	for i, cp := range list {
		if cp.Kind != properties.CredentialsAnonymous {
			continue
		}
		if i > 0 {
			return nil, fmt.Errorf("%s must come first in a chain: requests are either signed or not", cp.Kind)
		}
		return aws.AnonymousCredentials{}, nil
	}

	links := make(chain, 0, len(list))
	var reasons []string
	for _, cp := range list {
		p, err := newProvider(ctx, base, cp)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cp.Kind, err)
		}
		if u, ok := p.(unavailable); ok {
			reasons = append(reasons, fmt.Sprintf("%s: %v", cp.Kind, u.err))
		}
		links = append(links, link{name: cp.Kind.String(), provider: p})
	}
	if len(reasons) == len(links) {
		return nil, fmt.Errorf("no provider can work here: %s", strings.Join(reasons, "; "))
	}
	var p aws.CredentialsProvider = links
	if len(links) == 1 {
		p = links[0].provider
	}
	if _, ok := p.(*aws.CredentialsCache); ok {
		return p, nil
	}
	return aws.NewCredentialsCache(p), nil
}

// newProvider returns the aws-sdk-go-v2 provider for one Java provider. One
// that cannot work in this environment is returned as unavailable, not as
// an error: in a chain the next provider is then tried. The error is for a
// provider that is misconfigured.
func newProvider(ctx context.Context, base aws.Config, cp properties.CredentialsProvider) (aws.CredentialsProvider, error) {
	switch cp.Kind {
	case properties.CredentialsDefault:
		if base.Credentials == nil {
			return unavailable{err: errors.New("the SDK's default chain found no source")}, nil
		}
		return base.Credentials, nil
	case properties.CredentialsProfile:
		return profileProvider(ctx, base, cp.Args), nil
	case properties.CredentialsEnvironment:
		return environmentProvider(), nil
	case properties.CredentialsSystemProperty:
		return unavailable{err: errSystemProperty}, nil
	case properties.CredentialsInstanceProfile:
		client := imds.NewFromConfig(base)
		return ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }), nil
	case properties.CredentialsContainer:
		return containerProvider(base), nil
	case properties.CredentialsWebIdentity:
		return webIdentityProvider(base), nil
	case properties.CredentialsAssumeRole:
		return assumeRoleProvider(base, cp)
	case properties.CredentialsAnonymous:
		return aws.AnonymousCredentials{}, nil
	}
	return nil, fmt.Errorf("unsupported provider kind %d", int(cp.Kind))
}

// profileProvider loads the shared config files for the named profile (the
// default one without a name), as the SDK does for AWS_PROFILE: static keys,
// role_arn with source_profile, SSO, credential_process.
func profileProvider(ctx context.Context, base aws.Config, args []string) aws.CredentialsProvider {
	opts := []func(*config.LoadOptions) error{config.WithRegion(base.Region)}
	name := "default"
	if len(args) > 0 {
		name = args[0]
	}
	opts = append(opts, config.WithSharedConfigProfile(name))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return unavailable{err: fmt.Errorf("profile %q: %w", name, err)}
	}
	return cfg.Credentials
}

// environmentProvider reads AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_SESSION_TOKEN, and nothing else (DefaultCredentialsProvider is the one
// that also looks at profiles and instance metadata).
func environmentProvider() aws.CredentialsProvider {
	id, secret := os.Getenv(envAccessKeyID), os.Getenv(envSecretAccessKey)
	var missing []string
	if id == "" {
		missing = append(missing, envAccessKeyID)
	}
	if secret == "" {
		missing = append(missing, envSecretAccessKey)
	}
	if len(missing) > 0 {
		return unavailable{err: fmt.Errorf("%s not set", strings.Join(missing, " and "))}
	}
	p := credentials.NewStaticCredentialsProvider(id, secret, os.Getenv(envSessionToken))
	p.Value.Source = properties.CredentialsEnvironment.String()
	return p
}

// containerProvider fetches credentials from the ECS or EKS container
// endpoint that AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI names,
// with the authorization token of AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE
// (read on every request, as EKS rotates it) or _TOKEN.
func containerProvider(base aws.Config) aws.CredentialsProvider {
	var endpoint string
	switch rel, full := os.Getenv(envContainerRelative), os.Getenv(envContainerFull); {
	case rel != "":
		endpoint = ecsContainerHost + rel
	case full != "":
		if err := checkContainerURL(full); err != nil {
			return unavailable{err: fmt.Errorf("%s: %w", envContainerFull, err)}
		}
		endpoint = full
	default:
		return unavailable{err: fmt.Errorf("neither %s nor %s is set", envContainerRelative, envContainerFull)}
	}
	tokenFile, token := os.Getenv(envContainerTokenFile), os.Getenv(envContainerToken)
	return endpointcreds.New(endpoint, func(o *endpointcreds.Options) {
		o.HTTPClient = base.HTTPClient
		o.Retryer = retryerOf(base)
		switch {
		case tokenFile != "":
			o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return "", fmt.Errorf("awsconf: %s: %w", envContainerTokenFile, err)
				}
				return strings.TrimSpace(string(b)), nil
			})
		case token != "":
			o.AuthorizationToken = token
		}
	})
}

// checkContainerURL applies the SDKs' rule for a full container credentials
// URI: https anywhere, plain http only to this host or the ECS and EKS
// agents, so credentials are never sent in the clear over a network.
func checkContainerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if host == "localhost" {
			return nil
		}
		if ip := net.ParseIP(host); ip != nil &&
			(ip.IsLoopback() || ip.Equal(net.ParseIP("169.254.170.2")) ||
				ip.Equal(net.ParseIP("169.254.170.23")) || ip.Equal(net.ParseIP("fd00:ec2::23"))) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only to a loopback address or the ECS/EKS agent", s)
	}
	return fmt.Errorf("%q: scheme must be http or https", s)
}

// webIdentityProvider exchanges the token in AWS_WEB_IDENTITY_TOKEN_FILE for
// credentials of AWS_ROLE_ARN (EKS IRSA).
func webIdentityProvider(base aws.Config) aws.CredentialsProvider {
	file, role := os.Getenv(envWebIdentityToken), os.Getenv(envRoleARN)
	var missing []string
	if file == "" {
		missing = append(missing, envWebIdentityToken)
	}
	if role == "" {
		missing = append(missing, envRoleARN)
	}
	if len(missing) > 0 {
		return unavailable{err: fmt.Errorf("%s not set", strings.Join(missing, " and "))}
	}
	session := os.Getenv(envRoleSessionName)
	return stscreds.NewWebIdentityRoleProvider(sts.NewFromConfig(base), role, stscreds.IdentityTokenFile(file),
		func(o *stscreds.WebIdentityRoleOptions) {
			if session != "" {
				o.RoleSessionName = session
			}
		})
}

// assumeRoleProvider assumes Args[0] (role ARN) with session name Args[1],
// calling STS with the default credentials chain, as KCL's
// StsAssumeRoleCredentialsProvider does. Its properties: externalId,
// endpointRegion (the STS client's region) and endpoint (the STS endpoint).
func assumeRoleProvider(base aws.Config, cp properties.CredentialsProvider) (aws.CredentialsProvider, error) {
	if len(cp.Args) != 2 {
		return nil, errors.New("needs |roleArn|sessionName")
	}
	var stsOpts []func(*sts.Options)
	var externalID string
	for k, v := range cp.Properties {
		switch k {
		case "externalId":
			externalID = v
		case "endpointRegion":
			stsOpts = append(stsOpts, func(o *sts.Options) { o.Region = v })
		case "endpoint":
			ep, err := normalizeEndpoint(v)
			if err != nil {
				return nil, fmt.Errorf("endpoint: %w", err)
			}
			stsOpts = append(stsOpts, func(o *sts.Options) { o.BaseEndpoint = aws.String(ep) })
		default:
			return nil, fmt.Errorf("unknown property %q (known: externalId, endpointRegion, endpoint)", k)
		}
	}
	client := sts.NewFromConfig(base, stsOpts...)
	role, session := cp.Args[0], cp.Args[1]
	return stscreds.NewAssumeRoleProvider(client, role, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = session
		if externalID != "" {
			o.ExternalID = aws.String(externalID)
		}
	}), nil
}

// retryerOf returns base's retryer, or nil for the provider's default.
func retryerOf(base aws.Config) aws.Retryer {
	if base.Retryer == nil {
		return nil
	}
	return base.Retryer()
}
