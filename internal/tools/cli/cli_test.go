package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBadInput(t *testing.T) {
	if BadInput(nil) != nil {
		t.Error("BadInput(nil) is not nil")
	}
	cause := errors.New("line 3: count -1")
	err := fmt.Errorf("cases.csv: %w", BadInput(cause))
	if !IsBadInput(err) || !errors.Is(err, cause) {
		t.Errorf("wrapped bad input %v: IsBadInput %v, Is(cause) %v", err, IsBadInput(err), errors.Is(err, cause))
	}
	if IsBadInput(cause) || IsBadInput(nil) {
		t.Error("a plain error is bad input")
	}
	if err := BadInputf("--days %d", 0); err.Error() != "--days 0" || !IsBadInput(err) {
		t.Errorf("BadInputf gave %v", err)
	}
}

func TestChangedFirst(t *testing.T) {
	var none Changed
	if f := none.First("window"); f != "" {
		t.Errorf("nil Changed gave %q", f)
	}
	set := Changed(func(f string) bool { return f == "si-sd" || f == "window" })
	if f := set.First("si-mean", "si-sd", "window"); f != "si-sd" {
		t.Errorf("First = %q, want si-sd (the first given, in the order asked)", f)
	}
	if f := set.First("prior-mean"); f != "" {
		t.Errorf("First = %q for a flag not given", f)
	}
}

func TestReadInput(t *testing.T) {
	read := func(r io.Reader, label string) (string, error) {
		b, err := io.ReadAll(r)
		return label + ":" + string(b), err
	}
	got, err := ReadInput(Stdin, strings.NewReader("from stdin"), read)
	if err != nil || got != "<stdin>:from stdin" {
		t.Errorf("stdin: %q, %v", got, err)
	}
	path := filepath.Join(t.TempDir(), "in.csv")
	if err := os.WriteFile(path, []byte("from file"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadInput(path, strings.NewReader("not read"), read)
	if err != nil || got != path+":from file" {
		t.Errorf("file: %q, %v", got, err)
	}
	missing := filepath.Join(t.TempDir(), "nope.csv")
	if _, err := ReadInput(missing, nil, read); err == nil || !strings.Contains(err.Error(), "nope.csv") {
		t.Errorf("missing file: %v, want an error naming it", err)
	}
}

func TestOneLine(t *testing.T) {
	if got := OneLine("  503 Service Unavailable\nevent stream is full\n"); got != "503 Service Unavailable; event stream is full" {
		t.Errorf("OneLine = %q", got)
	}
}
