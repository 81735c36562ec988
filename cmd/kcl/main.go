// Command kcl runs Kinesis consumers. Its multilang command is a
// MultiLangDaemon host without the JVM: it runs the record processors of the
// Java KCL's multilang clients (Python, Node, Ruby, .NET) unchanged.
//
// Its operations commands manage streams and consumer applications (KCL
// lease tables, kcl's or the Java KCL's) the way the AWS CLI's
// configuration does (--profile, --region, --endpoint-url and the
// AWS_ENDPOINT_URL variables), with --output table|json.
//
// Usage:
//
//	kcl multilang --properties-file app.properties
//	kcl streams list | create NAME --shards N | describe NAME | delete NAME
//	kcl streams reshard NAME split SHARD | merge A B | scale N
//	kcl app describe APP [--stream S] [--watch]
//	kcl app reset APP --to trim-horizon|latest|TIME|SEQUENCE [--shard S] [--yes] [--force]
//	kcl --version
//
// See package internal/cli for the commands and the exit statuses.
package main

import (
	"os"

	"github.com/kclgo/kcl/cmd/kcl/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
