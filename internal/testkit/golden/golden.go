// Package golden compares test output with files under testdata/ and
// rewrites them when the test binary runs with -update (after review of the
// diff). Test code only.
package golden

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

// update is the test binary's -update flag; flags are process-wide, so it is
// declared once here for every package that uses golden files.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Check compares got with the file at path (relative to the package), or
// rewrites the file when -update is given.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update to rewrite it after review):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
