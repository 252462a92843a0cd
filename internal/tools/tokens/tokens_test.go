package tokens

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/epiwatch/epiwatch/internal/tools/cli"
	"github.com/epiwatch/epiwatch/pipeline/ingest"
)

func TestNew(t *testing.T) {
	var out bytes.Buffer
	if err := New(strings.NewReader(strings.Repeat("x", 32)), "lis-almaty", nil, &out); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`give it to lis-almaty once; it is not stored\): (ew_\S+)\n(?s:.*)name: lis-almaty\n\s+sha256: ([0-9a-f]{64})`).FindStringSubmatch(out.String())
	if m == nil || ingest.HashToken(m[1]) != m[2] {
		t.Fatalf("New printed:\n%s", out.String())
	}
	if err := New(strings.NewReader("short"), "x", nil, &bytes.Buffer{}); err == nil {
		t.Error("New with too few random bytes gave no error")
	}
}

// TestNewSources: the printed entry names the sources the token owns (its
// name without --source), and is configuration NewTokens accepts.
func TestNewSources(t *testing.T) {
	for _, tc := range []struct {
		sources []string
		want    string
	}{
		{nil, `sources: ["lis-almaty"]`},
		{[]string{"lis-almaty", "lis-astana"}, `sources: ["lis-almaty", "lis-astana"]`},
	} {
		var out bytes.Buffer
		if err := New(strings.NewReader(strings.Repeat("x", 32)), "lis-almaty", tc.sources, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("sources %q: printed\n%s\nwant %s", tc.sources, out.String(), tc.want)
		}
	}
	for _, bad := range []string{"", " lis", `a"b`} {
		if err := New(strings.NewReader(strings.Repeat("x", 32)), "n", []string{bad}, &bytes.Buffer{}); !cli.IsBadInput(err) {
			t.Errorf("--source %q: %v, want a bad-input error", bad, err)
		}
	}
}

func TestHash(t *testing.T) {
	// sha256("test"), from `printf test | sha256sum`.
	const want = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
	for name, run := range map[string]func(*bytes.Buffer) error{
		"argument":          func(out *bytes.Buffer) error { return Hash("test", nil, out) },
		"stdin":             func(out *bytes.Buffer) error { return Hash("", strings.NewReader(" test \nnext"), out) },
		"stdin without \\n": func(out *bytes.Buffer) error { return Hash("", strings.NewReader("test"), out) },
	} {
		var out bytes.Buffer
		if err := run(&out); err != nil || out.String() != want {
			t.Errorf("%s: %q, %v", name, out.String(), err)
		}
	}
	for name, err := range map[string]error{
		"empty argument": Hash("", nil, &bytes.Buffer{}),
		"empty stdin":    Hash("", strings.NewReader(""), &bytes.Buffer{}),
		"blank line":     Hash("", strings.NewReader("  \n"), &bytes.Buffer{}),
	} {
		if !cli.IsBadInput(err) {
			t.Errorf("%s: %v, want bad input", name, err)
		}
	}
}
