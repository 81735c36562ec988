package properties

import (
	"fmt"
	"strings"
)

// CredentialsKind names an AWS credentials provider of the Java SDK that a
// properties file may select.
type CredentialsKind int

// The providers KCL users write, by their Java class names.
const (
	// CredentialsDefault is DefaultCredentialsProvider (SDK v1:
	// DefaultAWSCredentialsProviderChain): the SDK's default chain.
	CredentialsDefault CredentialsKind = iota + 1
	// CredentialsProfile is ProfileCredentialsProvider[|profile]: a named
	// profile of the shared config files; no argument means the default one.
	CredentialsProfile
	// CredentialsEnvironment is EnvironmentVariableCredentialsProvider.
	CredentialsEnvironment
	// CredentialsSystemProperty is SystemPropertyCredentialsProvider (v1:
	// SystemPropertiesCredentialsProvider): Java system properties
	// aws.accessKeyId and aws.secretAccessKey, which a Go process does not have.
	CredentialsSystemProperty
	// CredentialsInstanceProfile is InstanceProfileCredentialsProvider (EC2 IMDS).
	CredentialsInstanceProfile
	// CredentialsContainer is ContainerCredentialsProvider (v1:
	// EC2ContainerCredentialsProviderWrapper): ECS/EKS container credentials.
	CredentialsContainer
	// CredentialsWebIdentity is WebIdentityTokenFileCredentialsProvider (v1:
	// WebIdentityTokenCredentialsProvider): AWS_WEB_IDENTITY_TOKEN_FILE and
	// AWS_ROLE_ARN.
	CredentialsWebIdentity
	// CredentialsAssumeRole is StsAssumeRoleCredentialsProvider|roleArn|sessionName
	// (also KclStsAssumeRoleCredentialsProvider and the v1
	// [Kcl]STSAssumeRoleSessionCredentialsProvider), optionally followed by
	// |key=value properties such as externalId and endpointRegion.
	CredentialsAssumeRole
	// CredentialsAnonymous is AnonymousCredentialsProvider: unsigned requests.
	CredentialsAnonymous
)

var credentialsKindNames = [...]string{
	CredentialsDefault:         "DefaultCredentialsProvider",
	CredentialsProfile:         "ProfileCredentialsProvider",
	CredentialsEnvironment:     "EnvironmentVariableCredentialsProvider",
	CredentialsSystemProperty:  "SystemPropertyCredentialsProvider",
	CredentialsInstanceProfile: "InstanceProfileCredentialsProvider",
	CredentialsContainer:       "ContainerCredentialsProvider",
	CredentialsWebIdentity:     "WebIdentityTokenFileCredentialsProvider",
	CredentialsAssumeRole:      "StsAssumeRoleCredentialsProvider",
	CredentialsAnonymous:       "AnonymousCredentialsProvider",
}

// String returns the Java SDK v2 class name of the provider.
func (k CredentialsKind) String() string {
	if k > 0 && int(k) < len(credentialsKindNames) {
		return credentialsKindNames[k]
	}
	return fmt.Sprintf("CredentialsKind(%d)", int(k))
}

// credentialsAliases maps every accepted simple class name to its kind.
var credentialsAliases = map[string]CredentialsKind{
	"DefaultCredentialsProvider":                 CredentialsDefault,
	"DefaultAWSCredentialsProviderChain":         CredentialsDefault,
	"ProfileCredentialsProvider":                 CredentialsProfile,
	"EnvironmentVariableCredentialsProvider":     CredentialsEnvironment,
	"SystemPropertyCredentialsProvider":          CredentialsSystemProperty,
	"SystemPropertiesCredentialsProvider":        CredentialsSystemProperty,
	"InstanceProfileCredentialsProvider":         CredentialsInstanceProfile,
	"ContainerCredentialsProvider":               CredentialsContainer,
	"EC2ContainerCredentialsProviderWrapper":     CredentialsContainer,
	"WebIdentityTokenFileCredentialsProvider":    CredentialsWebIdentity,
	"WebIdentityTokenCredentialsProvider":        CredentialsWebIdentity,
	"StsAssumeRoleCredentialsProvider":           CredentialsAssumeRole,
	"KclStsAssumeRoleCredentialsProvider":        CredentialsAssumeRole,
	"STSAssumeRoleSessionCredentialsProvider":    CredentialsAssumeRole,
	"KclSTSAssumeRoleSessionCredentialsProvider": CredentialsAssumeRole,
	"AnonymousCredentialsProvider":               CredentialsAnonymous,
}

// javaPackages are the package prefixes a fully qualified class name may carry.
var javaPackages = []string{
	"software.amazon.awssdk.auth.credentials.",
	"software.amazon.awssdk.services.sts.auth.",
	"software.amazon.kinesis.multilang.auth.",
	"com.amazonaws.auth.",
	"com.amazonaws.services.kinesis.multilang.auth.",
}

// A CredentialsProvider is one provider of an AwsCredentialsProvider value.
type CredentialsProvider struct {
	Kind CredentialsKind
	// Args are the |-separated arguments after the class name: the profile
	// name of CredentialsProfile; the role ARN and session name of
	// CredentialsAssumeRole.
	Args []string
	// Properties are the |key=value arguments of CredentialsAssumeRole that
	// follow its two positional ones (e.g. externalId, endpointRegion).
	Properties map[string]string
}

func knownProviders() string {
	return strings.Join(credentialsKindNames[1:], ", ")
}

// parseCredentials parses an AwsCredentialsProvider value: a comma-separated
// chain of providers, each a class name (simple or fully qualified) followed
// by |-separated arguments.
func parseCredentials(value string) ([]CredentialsProvider, string) {
	var chain []CredentialsProvider
	for _, item := range strings.Split(value, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, "|")
		name := strings.TrimSpace(parts[0])
		for _, p := range javaPackages {
			if rest, ok := strings.CutPrefix(name, p); ok {
				name = rest
				break
			}
		}
		kind, ok := credentialsAliases[name]
		if !ok {
			return nil, fmt.Sprintf("unknown credentials provider %q (known: %s)", name, knownProviders())
		}
		p := CredentialsProvider{Kind: kind}
		for _, a := range parts[1:] {
			a = strings.TrimSpace(a)
			if k, v, ok := strings.Cut(a, "="); ok && kind == CredentialsAssumeRole && len(p.Args) >= 2 {
				if p.Properties == nil {
					p.Properties = make(map[string]string)
				}
				p.Properties[k] = v
				continue
			}
			p.Args = append(p.Args, a)
		}
		switch {
		case kind == CredentialsProfile && len(p.Args) > 1:
			return nil, fmt.Sprintf("%s takes at most one argument, the profile name", name)
		case kind == CredentialsProfile && len(p.Args) == 1 && p.Args[0] == "":
			return nil, fmt.Sprintf("%s: empty profile name", name)
		case kind == CredentialsAssumeRole && (len(p.Args) != 2 || p.Args[0] == "" || p.Args[1] == ""):
			return nil, fmt.Sprintf("%s needs |roleArn|sessionName, then optional |key=value properties", name)
		case kind != CredentialsProfile && kind != CredentialsAssumeRole && len(p.Args) > 0:
			return nil, fmt.Sprintf("%s takes no arguments", name)
		}
		chain = append(chain, p)
	}
	if len(chain) == 0 {
		return nil, "no credentials provider (known: " + knownProviders() + ")"
	}
	return chain, ""
}
