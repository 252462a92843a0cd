package repotest

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// outside matches a reference to a folder beside the repository: the
// development machine keeps reference outputs and source documents in a
// sibling folder, shared/, which a user's clone never has. Whatever a test or
// a document needs from there is copied in (pipeline/science/epi/testdata/epiestim,
// docs/sources.md).
var outside = regexp.MustCompile(`\.\./shared|shared/(reference|seeds|hooks)|"shared",\s*"(reference|seeds)"`)

// skipDirs are not part of a clone: git's own folder and what the scripts
// create at run time (.gitignore).
var skipDirs = map[string]bool{".git": true, "data": true, "bin": true, ".cache": true, "node_modules": true}

// TestNothingReadsOutsideTheRepository fails if any file of the repository
// names the sibling shared/ folder.
func TestNothingReadsOutsideTheRepository(t *testing.T) {
	root := repoRoot(t)
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) >= 0 {
			return nil // binary
		}
		files++
		for i, line := range bytes.Split(b, []byte("\n")) {
			if outside.Match(line) {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s:%d names a folder outside the repository (%q); copy what it needs into the repository", rel, i+1, outside.Find(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("walked only %d files from %s: not the repository root?", files, root)
	}
}

// TestOutsidePatternMatches is the negative control: the pattern catches each
// way the repository once named the folder.
func TestOutsidePatternMatches(t *testing.T) {
	// Written with a placeholder, or this file would fail the test above.
	for _, s := range []string{
		`var referenceDir = filepath.Join("..", "..", "..", "SHARED", "reference", "epiestim")`,
		"walks every case in `../SHARED/reference/epiestim/`",
		"item 1 (SHARED/seeds/README.md)",
	} {
		s = strings.ReplaceAll(s, "SHARED", "shared")
		if !outside.MatchString(s) {
			t.Errorf("pattern misses %q", s)
		}
	}
	for _, s := range []string{"pipeline/science/epi/testdata/epiestim", "docs/sources.md", "shared by every consumer"} {
		if outside.MatchString(s) {
			t.Errorf("pattern matches %q, which is inside the repository", s)
		}
	}
}

// repoRoot is the folder holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above %s", dir)
		}
		dir = parent
	}
}
