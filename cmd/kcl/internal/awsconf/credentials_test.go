package awsconf

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"

	"github.com/kclgo/kcl/cmd/kcl/internal/properties"
)

// sdkEnv lists the variables that change how the SDK finds a region and
// credentials; isolate clears them.
var sdkEnv = []string{
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION",
	envAccessKeyID, envSecretAccessKey, envSessionToken, "AWS_ACCESS_KEY", "AWS_SECRET_KEY",
	envContainerRelative, envContainerFull, envContainerToken, envContainerTokenFile,
	envWebIdentityToken, envRoleARN, envRoleSessionName,
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_STS",
}

// isolate makes the test independent of the machine's AWS environment: no
// AWS_* credentials or region, shared config files in an empty directory,
// instance metadata disabled. It returns that directory.
func isolate(t *testing.T) string {
	t.Helper()
	for _, k := range sdkEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return dir
}

// baseConfig loads the SDK's default configuration in the isolated
// environment, as Load does.
func baseConfig(t *testing.T) aws.Config {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatalf("LoadDefaultConfig: %v", err)
	}
	return cfg
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func retrieve(t *testing.T, p aws.CredentialsProvider) aws.Credentials {
	t.Helper()
	creds, err := p.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return creds
}

// wantUnavailable checks that p is unavailable with an error containing
// every one of parts.
func wantUnavailable(t *testing.T, p aws.CredentialsProvider, parts ...string) {
	t.Helper()
	u, ok := p.(unavailable)
	if !ok {
		t.Fatalf("provider is %T, want unavailable", p)
	}
	_, err := p.Retrieve(t.Context())
	if err == nil || !errors.Is(err, u.err) {
		t.Fatalf("Retrieve error = %v, want %v", err, u.err)
	}
	for _, s := range parts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func newTestProvider(t *testing.T, base aws.Config, kind properties.CredentialsKind, args ...string) aws.CredentialsProvider {
	t.Helper()
	p, err := newProvider(t.Context(), base, properties.CredentialsProvider{Kind: kind, Args: args})
	if err != nil {
		t.Fatalf("newProvider(%v): %v", kind, err)
	}
	return p
}

func TestDefaultIsTheSDKDefaultChain(t *testing.T) {
	isolate(t)
	t.Setenv(envAccessKeyID, "AKIDENV")
	t.Setenv(envSecretAccessKey, "envsecret")
	base := baseConfig(t)
	p := newTestProvider(t, base, properties.CredentialsDefault)
	if p != base.Credentials {
		t.Errorf("Default gave %T, want the default config's provider %T", p, base.Credentials)
	}
	if got := retrieve(t, p); got.AccessKeyID != "AKIDENV" {
		t.Errorf("AccessKeyID = %q, want the environment's AKIDENV", got.AccessKeyID)
	}
}

func TestProfileReadsTheNamedProfile(t *testing.T) {
	dir := isolate(t)
	writeFile(t, filepath.Join(dir, "credentials"),
		"[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n"+
			"[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = o\n")
	// The environment's keys must not win over an explicitly named profile.
	t.Setenv(envAccessKeyID, "AKIDENV")
	t.Setenv(envSecretAccessKey, "envsecret")
	base := baseConfig(t)

	if got := retrieve(t, newTestProvider(t, base, properties.CredentialsProfile, "other")); got.AccessKeyID != "AKIDOTHER" {
		t.Errorf("ProfileCredentialsProvider|other: AccessKeyID = %q, want AKIDOTHER", got.AccessKeyID)
	}
	if got := retrieve(t, newTestProvider(t, base, properties.CredentialsProfile)); got.AccessKeyID != "AKIDDEFAULT" {
		t.Errorf("ProfileCredentialsProvider: AccessKeyID = %q, want AKIDDEFAULT", got.AccessKeyID)
	}
	wantUnavailable(t, newTestProvider(t, base, properties.CredentialsProfile, "missing"), `profile "missing"`)
}

func TestEnvironmentReadsOnlyTheEnvironment(t *testing.T) {
	dir := isolate(t)
	// A profile must not be used by EnvironmentVariableCredentialsProvider.
	writeFile(t, filepath.Join(dir, "credentials"), "[default]\naws_access_key_id = AKIDFILE\naws_secret_access_key = f\n")
	base := baseConfig(t)

	wantUnavailable(t, newTestProvider(t, base, properties.CredentialsEnvironment), envAccessKeyID, envSecretAccessKey)

	t.Setenv(envAccessKeyID, "AKIDENV")
	wantUnavailable(t, newTestProvider(t, base, properties.CredentialsEnvironment), envSecretAccessKey+" not set")

	t.Setenv(envSecretAccessKey, "envsecret")
	t.Setenv(envSessionToken, "envtoken")
	p := newTestProvider(t, base, properties.CredentialsEnvironment)
	if _, ok := p.(credentials.StaticCredentialsProvider); !ok {
		t.Errorf("provider is %T, want credentials.StaticCredentialsProvider", p)
	}
	got := retrieve(t, p)
	if got.AccessKeyID != "AKIDENV" || got.SecretAccessKey != "envsecret" || got.SessionToken != "envtoken" {
		t.Errorf("credentials = %+v, want the environment's", got)
	}
	if got.Source != "EnvironmentVariableCredentialsProvider" {
		t.Errorf("Source = %q", got.Source)
	}
}

func TestSystemPropertyExplainsItself(t *testing.T) {
	isolate(t)
	p := newTestProvider(t, baseConfig(t), properties.CredentialsSystemProperty)
	wantUnavailable(t, p, "Java system properties it reads do not exist for a Go process", "use EnvironmentVariableCredentialsProvider")
}

func TestInstanceProfileIsEC2RoleCreds(t *testing.T) {
	isolate(t)
	p := newTestProvider(t, baseConfig(t), properties.CredentialsInstanceProfile)
	if _, ok := p.(*ec2rolecreds.Provider); !ok {
		t.Errorf("provider is %T, want *ec2rolecreds.Provider", p)
	}
}

func TestContainer(t *testing.T) {
	t.Run("without the variables it is unavailable", func(t *testing.T) {
		isolate(t)
		wantUnavailable(t, newTestProvider(t, baseConfig(t), properties.CredentialsContainer), envContainerRelative, envContainerFull)
	})
	t.Run("the relative URI goes to the ECS agent", func(t *testing.T) {
		isolate(t)
		t.Setenv(envContainerRelative, "/v2/credentials/abc")
		p := newTestProvider(t, baseConfig(t), properties.CredentialsContainer)
		if _, ok := p.(*endpointcreds.Provider); !ok {
			t.Errorf("provider is %T, want *endpointcreds.Provider", p)
		}
	})
	t.Run("plain http to a remote host is refused", func(t *testing.T) {
		isolate(t)
		base := baseConfig(t) // the SDK refuses such a URI too, when it loads
		t.Setenv(envContainerFull, "http://192.0.2.1/creds")
		wantUnavailable(t, newTestProvider(t, base, properties.CredentialsContainer), envContainerFull, "plain http")
	})
	t.Run("the full URI is fetched with the token file's token", func(t *testing.T) {
		dir := isolate(t)
		var gotAuth string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotAuth = r.Header.Get("Authorization")
			fmt.Fprint(w, `{"AccessKeyId":"AKIDCONTAINER","SecretAccessKey":"c","Token":"t","Expiration":"2099-01-01T00:00:00Z"}`)
		}))
		defer srv.Close()
		tokenFile := filepath.Join(dir, "token")
		writeFile(t, tokenFile, "tok-from-file\n")
		t.Setenv(envContainerFull, srv.URL+"/creds")
		t.Setenv(envContainerTokenFile, tokenFile)
		t.Setenv(envContainerToken, "tok-from-env")
		got := retrieve(t, newTestProvider(t, baseConfig(t), properties.CredentialsContainer))
		if got.AccessKeyID != "AKIDCONTAINER" {
			t.Errorf("AccessKeyID = %q, want AKIDCONTAINER", got.AccessKeyID)
		}
		if gotAuth != "tok-from-file" {
			t.Errorf("Authorization = %q, want the token file's (it wins over the variable)", gotAuth)
		}
	})
}

func TestWebIdentity(t *testing.T) {
	isolate(t)
	base := baseConfig(t)
	wantUnavailable(t, newTestProvider(t, base, properties.CredentialsWebIdentity), envWebIdentityToken, envRoleARN)
	t.Setenv(envWebIdentityToken, "/var/run/token")
	wantUnavailable(t, newTestProvider(t, base, properties.CredentialsWebIdentity), envRoleARN+" not set")
	t.Setenv(envRoleARN, "arn:aws:iam::123456789012:role/r")
	p := newTestProvider(t, base, properties.CredentialsWebIdentity)
	if _, ok := p.(*stscreds.WebIdentityRoleProvider); !ok {
		t.Errorf("provider is %T, want *stscreds.WebIdentityRoleProvider", p)
	}
}

func TestAssumeRoleCallsSTSWithTheRoleSessionAndExternalID(t *testing.T) {
	isolate(t)
	t.Setenv(envAccessKeyID, "AKIDSOURCE")
	t.Setenv(envSecretAccessKey, "s")
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form = r.PostForm
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprint(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>`+
			`<Credentials><AccessKeyId>AKIDROLE</AccessKeyId><SecretAccessKey>r</SecretAccessKey>`+
			`<SessionToken>rt</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>`+
			`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/kcl</Arn><AssumedRoleId>ID:kcl</AssumedRoleId></AssumedRoleUser>`+
			`</AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>`)
	}))
	defer srv.Close()

	cp := properties.CredentialsProvider{
		Kind:       properties.CredentialsAssumeRole,
		Args:       []string{"arn:aws:iam::123456789012:role/r", "kcl"},
		Properties: map[string]string{"externalId": "ext-1", "endpointRegion": "eu-west-1", "endpoint": srv.URL},
	}
	p, err := newProvider(t.Context(), baseConfig(t), cp)
	if err != nil {
		t.Fatalf("newProvider: %v", err)
	}
	if _, ok := p.(*stscreds.AssumeRoleProvider); !ok {
		t.Fatalf("provider is %T, want *stscreds.AssumeRoleProvider", p)
	}
	if got := retrieve(t, p); got.AccessKeyID != "AKIDROLE" {
		t.Errorf("AccessKeyID = %q, want AKIDROLE", got.AccessKeyID)
	}
	want := map[string]string{
		"Action":          "AssumeRole",
		"RoleArn":         "arn:aws:iam::123456789012:role/r",
		"RoleSessionName": "kcl",
		"ExternalId":      "ext-1",
	}
	for k, v := range want {
		if got := form[k]; len(got) != 1 || got[0] != v {
			t.Errorf("STS request %s = %q, want %q", k, got, v)
		}
	}
}

func TestAssumeRoleRejectsAnUnknownProperty(t *testing.T) {
	isolate(t)
	cp := properties.CredentialsProvider{
		Kind:       properties.CredentialsAssumeRole,
		Args:       []string{"arn:aws:iam::123456789012:role/r", "kcl"},
		Properties: map[string]string{"externalID": "x"},
	}
	_, err := newProvider(t.Context(), baseConfig(t), cp)
	if err == nil || !strings.Contains(err.Error(), `unknown property "externalID"`) {
		t.Errorf("newProvider = %v, want an unknown property error", err)
	}
}

func TestAnonymousIsUnsigned(t *testing.T) {
	isolate(t)
	base := baseConfig(t)
	p := newTestProvider(t, base, properties.CredentialsAnonymous)
	if _, ok := p.(aws.AnonymousCredentials); !ok {
		t.Errorf("provider is %T, want aws.AnonymousCredentials", p)
	}
	// Alone or first, the whole chain is anonymous: the SDK then skips signing.
	for _, list := range [][]properties.CredentialsProvider{
		{{Kind: properties.CredentialsAnonymous}},
		{{Kind: properties.CredentialsAnonymous}, {Kind: properties.CredentialsEnvironment}},
	} {
		p, err := credentialsFor(t.Context(), base, list)
		if err != nil {
			t.Fatalf("credentialsFor: %v", err)
		}
		if !aws.IsCredentialsProvider(p, aws.AnonymousCredentials{}) {
			t.Errorf("credentialsFor(%v) = %T, want aws.AnonymousCredentials", list, p)
		}
	}
	_, err := credentialsFor(t.Context(), base, []properties.CredentialsProvider{
		{Kind: properties.CredentialsEnvironment}, {Kind: properties.CredentialsAnonymous},
	})
	if err == nil || !strings.Contains(err.Error(), "AnonymousCredentialsProvider must come first") {
		t.Errorf("Anonymous after another provider: err = %v", err)
	}
}

func TestCredentialsForChains(t *testing.T) {
	isolate(t)
	base := baseConfig(t)
	sysThenEnv := []properties.CredentialsProvider{
		{Kind: properties.CredentialsSystemProperty}, {Kind: properties.CredentialsEnvironment},
	}

	_, err := credentialsFor(t.Context(), base, sysThenEnv)
	if err == nil {
		t.Fatal("a chain none of whose providers can work was accepted")
	}
	for _, s := range []string{"SystemPropertyCredentialsProvider: the Java system properties", "EnvironmentVariableCredentialsProvider: " + envAccessKeyID} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}

	t.Setenv(envAccessKeyID, "AKIDENV")
	t.Setenv(envSecretAccessKey, "envsecret")
	p, err := credentialsFor(t.Context(), base, sysThenEnv)
	if err != nil {
		t.Fatalf("credentialsFor: %v", err)
	}
	if _, ok := p.(*aws.CredentialsCache); !ok {
		t.Errorf("chain is %T, want it cached", p)
	}
	if got := retrieve(t, p); got.AccessKeyID != "AKIDENV" {
		t.Errorf("AccessKeyID = %q, want AKIDENV from the second provider", got.AccessKeyID)
	}
}

func TestLoadNeedsARegion(t *testing.T) {
	isolate(t)
	_, err := Load(context.Background(), &properties.Config{
		Credentials: []properties.CredentialsProvider{{Kind: properties.CredentialsDefault}},
	})
	if err == nil || !strings.Contains(err.Error(), "awsconf: no region: set regionName") {
		t.Errorf("Load without a region: err = %v", err)
	}
}

func TestLoadSetsEndpointsRegionAndCredentialsPerClient(t *testing.T) {
	dir := isolate(t)
	writeFile(t, filepath.Join(dir, "credentials"), "[ddb]\naws_access_key_id = AKIDDDB\naws_secret_access_key = d\n")
	t.Setenv(envAccessKeyID, "AKIDENV")
	t.Setenv(envSecretAccessKey, "envsecret")
	confs, err := Load(t.Context(), &properties.Config{
		Region:              "eu-central-1",
		KinesisEndpoint:     "kinesis.internal:4567",
		DynamoDBEndpoint:    "http://127.0.0.1:8000",
		Credentials:         []properties.CredentialsProvider{{Kind: properties.CredentialsEnvironment}},
		DynamoDBCredentials: []properties.CredentialsProvider{{Kind: properties.CredentialsProfile, Args: []string{"ddb"}}},
	})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := aws.ToString(confs.Kinesis.BaseEndpoint); got != "https://kinesis.internal:4567" {
		t.Errorf("Kinesis BaseEndpoint = %q", got)
	}
	if got := aws.ToString(confs.DynamoDB.BaseEndpoint); got != "http://127.0.0.1:8000" {
		t.Errorf("DynamoDB BaseEndpoint = %q", got)
	}
	if confs.Kinesis.Region != "eu-central-1" || confs.DynamoDB.Region != "eu-central-1" {
		t.Errorf("regions = %q, %q", confs.Kinesis.Region, confs.DynamoDB.Region)
	}
	if got := retrieve(t, confs.Kinesis.Credentials); got.AccessKeyID != "AKIDENV" {
		t.Errorf("Kinesis AccessKeyID = %q, want AKIDENV", got.AccessKeyID)
	}
	if got := retrieve(t, confs.DynamoDB.Credentials); got.AccessKeyID != "AKIDDDB" {
		t.Errorf("DynamoDB AccessKeyID = %q, want AKIDDDB (AwsCredentialsProviderDynamoDB)", got.AccessKeyID)
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "empty means the SDK's endpoint", in: "", want: ""},
		{name: "a bare host gets https", in: "kinesis.us-east-1.amazonaws.com", want: "https://kinesis.us-east-1.amazonaws.com"},
		{name: "a bare host and port gets https", in: "localhost:4567", want: "https://localhost:4567"},
		{name: "http is kept for local emulators", in: "http://127.0.0.1:4567", want: "http://127.0.0.1:4567"},
		{name: "https is kept", in: "https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com", want: "https://vpce-1.kinesis.us-east-1.vpce.amazonaws.com"},
		{name: "surrounding spaces are dropped", in: " http://h:1 ", want: "http://h:1"},
		{name: "another scheme is refused", in: "ftp://h", wantErr: "scheme must be http or https"},
		{name: "a URL without a host is refused", in: "http://:80", wantErr: "has no host"},
		{name: "a host with a space is refused", in: "bad host", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := normalizeEndpoint(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("normalizeEndpoint(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("normalizeEndpoint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
