// Package examplebuild checks that every program under examples/ is one a
// user can copy: copied out of the repository into a module of its own, with
// only a replace directive pointing at this checkout, it builds. A program
// that imports an internal package of kcl fails here, because Go forbids
// importing another module's internal packages.
package examplebuild

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repoRoot returns the directory holding kcl's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/kclgo/kcl\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod of github.com/kclgo/kcl above the working directory")
		}
		dir = parent
	}
}

// examples lists the directories under examples/ that hold a main package.
func examples(t *testing.T, root string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", "{{if eq .Name \"main\"}}{{.Dir}}{{end}}", "./examples/...").Output()
	if err != nil {
		t.Fatalf("go list ./examples/...: %v", err)
	}
	var dirs []string
	for _, line := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, line)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, rel)
	}
	if len(dirs) == 0 {
		t.Fatal("go list found no main package under examples/")
	}
	return dirs
}

// copyTree copies the regular files under src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// nestedModules lists the directories under examples/ that are modules of
// their own (a go.mod beside the program: those that use a plugin module).
// go list ./examples/... does not see them.
func nestedModules(t *testing.T, root string) []string {
	t.Helper()
	mods, err := filepath.Glob(filepath.Join(root, "examples", "*", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, m := range mods {
		rel, err := filepath.Rel(root, filepath.Dir(m))
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, rel)
	}
	return dirs
}

// TestNestedExampleModulesBuildOutsideTheRepository copies each example
// that is a module of its own out of the repository, with its replace
// directives pointed at this checkout, and builds and vets it: it must
// import only public packages of kcl and of the plugins.
func TestNestedExampleModulesBuildOutsideTheRepository(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example module in a copy of its own")
	}
	root := repoRoot(t)
	for _, rel := range nestedModules(t, root) {
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			src := filepath.Join(root, rel)
			dir := filepath.Join(t.TempDir(), filepath.Base(rel))
			copyTree(t, src, dir)
			b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "module ") {
					// Outside kcl's module path, as a user's program is:
					// kcl's internal packages are then out of reach.
					line = "module example.com/" + filepath.Base(rel)
				}
				if before, target, ok := strings.Cut(line, "=> "); ok && strings.HasPrefix(strings.TrimSpace(target), ".") {
					line = before + "=> " + filepath.Join(src, strings.TrimSpace(target))
				}
				out = append(out, line)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(strings.Join(out, "\n")), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"mod", "tidy"}, {"build", "./..."}, {"vet", "./..."}} {
				cmd := exec.Command("go", args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %s in a copy of %s: %v\n%s", strings.Join(args, " "), rel, err, out)
				}
			}
		})
	}
}

func TestExamplesBuildAsStandaloneModules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every example in a module of its own")
	}
	root := repoRoot(t)
	t.Chdir(root)
	for _, rel := range examples(t, root) {
		t.Run(filepath.ToSlash(rel), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), filepath.Base(rel))
			copyTree(t, filepath.Join(root, rel), dir)
			mod := "module example.com/" + filepath.Base(rel) + "\n\ngo 1.26.0\n\n" +
				"require github.com/kclgo/kcl v0.0.0\n\n" +
				"replace github.com/kclgo/kcl => " + root + "\n"
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
				t.Fatal(err)
			}
			// The copy takes kcl's own go.sum, so that tidy resolves the
			// same versions without a checksum database look-up.
			sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{{"mod", "tidy"}, {"build", "./..."}, {"vet", "./..."}} {
				cmd := exec.Command("go", args...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %s in a copy of %s: %v\n%s", strings.Join(args, " "), rel, err, out)
				}
			}
		})
	}
}
