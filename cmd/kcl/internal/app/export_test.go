package app

import (
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// FixtureItemsForTest gives the command tests (package app_test) the
// fixture loader.
func FixtureItemsForTest(t testing.TB, path string) []map[string]types.AttributeValue {
	return fixtureItemsFrom(t, filepath.Dir(path), filepath.Base(path))
}

// RunWorkerForTest runs a kcl Worker (see runWorker) for the command tests.
var RunWorkerForTest = runWorker
