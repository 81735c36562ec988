// Command kcl runs Kinesis consumers. Its multilang command is a
// MultiLangDaemon host without the JVM: it runs the record processors of the
// Java KCL's multilang clients (Python, Node, Ruby, .NET) unchanged.
//
// Usage:
//
//	kcl multilang --properties-file app.properties
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
