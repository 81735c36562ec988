package checkpoint

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPackageIsALeaf keeps checkpoint free of the module's other packages,
// so that lease (and everything else) can import it without a cycle.
func TestPackageIsALeaf(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/kclgo/kcl" || strings.HasPrefix(path, "github.com/kclgo/kcl/") {
				t.Errorf("%s imports %s; checkpoint must stay a leaf", name, path)
			}
		}
	}
}
